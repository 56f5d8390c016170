"""The proposal head's training targets: the teacher's dense everything masks per training image, cached.

For training image i of the generator's split (seed ``data_seed``), the bundle's image embedding (the frozen
encoder, as the host computes it) and the teacher's dense everything masks (``AutomaticMaskGenerator``,
``dense_*`` parameters), each reduced to a centre and a box in encoder-input pixels. One ``NNNNN.npz`` per image
under ``cache_dir/KEY``, KEY hashing the teacher's graphs, the split and the dense parameters.

The dense run is the costly part (1.0-1.3 s per 256² image per one-thread worker here), so it can run in ``workers``
spawned processes, within a time budget, and travel without the embeddings: ``pack`` writes the masks' centres
and boxes of a cache's first N images into one small file, ``unpack`` fills a cache from it, computing each
embedding with this machine's encoder (cheap: one encoder run per image).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .config import ProposalTrainConfig

CACHE_FORMAT = 2  # 2: targets carry both centre kinds ("centres", "prompt_centres")
PACK_FORMAT = 1
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
MASK_KEYS = ("centres", "prompt_centres", "boxes")  # per image: (K, 2), (K, 2), (K, 4) float32


def bundle_dir(cfg: ProposalTrainConfig) -> Path:
    if cfg.bundle:
        return Path(cfg.bundle)
    from samfpga.resources import package_path

    return Path(package_path("samfpga.assets", "default"))


def mask_centre(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool, non-empty -> (2,) float64 (x, y): the mask pixel nearest the centroid (inside if concave)."""
    ys, xs = np.nonzero(mask)
    i = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
    return np.array([xs[i], ys[i]], dtype=np.float64)


def teacher_masks(pred, image: np.ndarray, cfg: ProposalTrainConfig,
                  input_size: tuple[int, int]) -> dict[str, np.ndarray]:
    """The teacher's dense masks as ``centres`` (K, 2) (the mask pixel nearest each centroid), ``prompt_centres``
    (K, 2) (the grid point whose prompt produced the mask) and ``boxes`` (K, 4) xyxy, float32, in the pixels of
    the encoder input (``input_size``: (h, w) of the resized image)."""
    from samfpga.everything import AutomaticMaskGenerator

    gen = AutomaticMaskGenerator(pred, points_per_side=cfg.dense_points_per_side,
                                 pred_iou_thresh=cfg.dense_pred_iou_thresh,
                                 stability_score_thresh=cfg.dense_stability_score_thresh)
    records = gen.generate(image)
    scale = np.array([input_size[1] / image.shape[1], input_size[0] / image.shape[0]])
    centres, prompts, boxes = [], [], []
    for r in records:
        m = r["segmentation"]
        if not m.any():
            continue
        x, y, w, h = r["bbox"]
        centres.append(mask_centre(m) * scale)
        prompts.append(np.asarray(r["point_coords"][0], np.float64) * scale)
        boxes.append(np.array([x, y, x + w, y + h], dtype=np.float64) * np.tile(scale, 2))
    return {"centres": np.asarray(centres, np.float32).reshape(-1, 2),
            "prompt_centres": np.asarray(prompts, np.float32).reshape(-1, 2),
            "boxes": np.asarray(boxes, np.float32).reshape(-1, 4)}


def image_embedding(pred, image: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """The frozen encoder's embedding of ``image`` as the host computes it, (C, h, w) float32, and the resized
    image's (h, w) in the encoder input."""
    pred.set_image(image)
    emb = pred.get_image_embedding()[0].astype(np.float32)
    input_size = tuple(pred.input_size)
    pred.reset_image()
    return emb, input_size


def teacher_targets(pred, image: np.ndarray, cfg: ProposalTrainConfig) -> dict[str, np.ndarray]:
    """``embedding`` (C, h, w) float32 and ``teacher_masks``' centres and boxes."""
    emb, input_size = image_embedding(pred, image)
    return {"embedding": emb, **teacher_masks(pred, image, cfg, input_size)}


def cache_key(cfg: ProposalTrainConfig, bundle: Path) -> str:
    manifest = json.loads((bundle / "bundle.json").read_text())
    # the teacher's graphs only: installing a proposal head into the bundle must not invalidate the cache
    teacher = {k: v for k, v in (manifest.get("sha256") or {}).items() if k != "proposals"}
    blob = json.dumps({"format": CACHE_FORMAT, "sha256": teacher, "generator": cfg.generator, "seed": cfg.data_seed,
                       "dense": [cfg.dense_points_per_side, cfg.dense_pred_iou_thresh,
                                 cfg.dense_stability_score_thresh]}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_folder(cfg: ProposalTrainConfig) -> Path:
    return Path(cfg.cache_dir) / cache_key(cfg, bundle_dir(cfg))


def _write(f: Path, t: dict[str, np.ndarray]) -> None:
    tmp = f.with_name(f".{f.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **t)
    os.replace(tmp, f)


_WORKER: dict = {}


def _compute_chunk(job: tuple[dict, str, list[int]]) -> list[int]:
    """Worker process: compute and cache the targets of ``indices`` (one Predictor per process, one thread)."""
    cfg_dict, folder, indices = job
    cfg = ProposalTrainConfig.from_dict(cfg_dict)
    if "pred" not in _WORKER:
        from samfpga.models.data import sample_function
        from samfpga.predictor import Predictor

        pred = Predictor.from_bundle(bundle_dir(cfg), threads=1)
        _WORKER.update(pred=pred, sample=sample_function(cfg.generator, pred.image_size))
    for i in indices:
        f = Path(folder) / f"{i:05d}.npz"
        if not f.is_file():
            _write(f, teacher_targets(_WORKER["pred"], _WORKER["sample"](cfg.data_seed, i).image, cfg))
    return indices


@contextmanager
def _one_thread_children() -> Iterator[None]:
    """Spawned children inherit the environment: their numpy / torch thread pools start at one thread."""
    saved = {k: os.environ.get(k) for k in THREAD_VARS}
    os.environ.update({k: "1" for k in THREAD_VARS})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def compute_targets(cfg: ProposalTrainConfig, budget_s: float | None = None, log: bool = True,
                    chunk: int = 4) -> int:
    """Compute the missing targets of images 0 .. ``cfg.images`` - 1 into the cache, in index order, in
    ``cfg.workers`` spawned processes; with ``budget_s``, no new image is started after that many seconds.
    Returns how many images from 0 on are cached without a gap."""
    from dataclasses import asdict

    folder = cache_folder(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    missing = [i for i in range(cfg.images) if not (folder / f"{i:05d}.npz").is_file()]
    t0 = time.perf_counter()
    done = 0
    jobs = [(asdict(cfg), str(folder), missing[i:i + chunk]) for i in range(0, len(missing), chunk)]
    if cfg.workers > 1 and len(jobs) > 1:
        import multiprocessing as mp
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        # spawn, not fork: the parent may hold torch's and onnxruntime's thread pools. One BLAS / OpenMP thread
        # per worker: measured on a 16-core machine, 16 workers with their libraries' default thread pools made
        # 2.0 images/s, with one thread each 9.3
        with _one_thread_children(), ProcessPoolExecutor(cfg.workers, mp_context=mp.get_context("spawn")) as ex:
            pending: set = set()
            queue = iter(jobs)
            while True:
                while len(pending) < 2 * cfg.workers and (budget_s is None or time.perf_counter() - t0 < budget_s):
                    job = next(queue, None)
                    if job is None:
                        break
                    pending.add(ex.submit(_compute_chunk, job))
                if not pending:
                    break
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    done += len(fut.result())
                if log:
                    _progress(done, len(missing), t0)
    else:
        for job in jobs:
            if budget_s is not None and time.perf_counter() - t0 >= budget_s:
                break
            done += len(_compute_chunk(job))
            if log and done % 10 < chunk:
                _progress(done, len(missing), t0)
    return cached_prefix(folder, cfg.images)


def _progress(done: int, of: int, t0: float) -> None:
    print(json.dumps({"targets": done, "of": of, "s": round(time.perf_counter() - t0, 1)}), flush=True)


def cached_prefix(folder: Path, limit: int) -> int:
    """How many images from 0 on have a cache file in ``folder`` (at most ``limit``)."""
    n = 0
    while n < limit and (Path(folder) / f"{n:05d}.npz").is_file():
        n += 1
    return n


def build_targets(cfg: ProposalTrainConfig, log: bool = True) -> tuple[list[dict[str, np.ndarray]], int]:
    """The cached (or computed) targets of the ``cfg.images`` training images, and the encoder input size."""
    n = compute_targets(cfg, log=log)
    if n < cfg.images:
        raise RuntimeError(f"proposal targets: only {n} of {cfg.images} images cached in {cache_folder(cfg)}")
    folder = cache_folder(cfg)
    out = []
    for i in range(cfg.images):
        with np.load(folder / f"{i:05d}.npz") as z:
            out.append({k: z[k] for k in z.files})
    return out, int(json.loads((bundle_dir(cfg) / "bundle.json").read_text())["image_size"])


def pack(cfg: ProposalTrainConfig, path: Path, images: int | None = None) -> int:
    """Write the teacher masks (``MASK_KEYS``, no embeddings) of the cache's first ``images`` images (default:
    all cached from 0 on) into one ``.npz``; returns the image count."""
    import onnxruntime

    folder = cache_folder(cfg)
    n = cached_prefix(folder, cfg.images) if images is None else images
    counts, parts = [], {k: [] for k in MASK_KEYS}
    for i in range(n):
        with np.load(folder / f"{i:05d}.npz") as z:
            counts.append(len(z["boxes"]))
            for k in MASK_KEYS:
                parts[k].append(z[k])
    meta = {"format": PACK_FORMAT, "cache_key": folder.name, "images": n, "onnxruntime": onnxruntime.__version__,
            "numpy": np.__version__}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez_compressed(tmp, meta=np.array(json.dumps(meta)), counts=np.asarray(counts, np.int64),
                        **{k: (np.concatenate(v) if v else np.zeros((0, 4 if k == "boxes" else 2), np.float32))
                           for k, v in parts.items()})
    os.replace(tmp, path)
    return n


def read_pack(path: Path) -> tuple[dict, list[dict[str, np.ndarray]]]:
    """A pack's metadata and its per-image ``MASK_KEYS`` arrays."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"proposal target pack {path}: no such file")
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        if meta.get("format") != PACK_FORMAT:
            raise ValueError(f"proposal target pack {path}: format {meta.get('format')}, expected {PACK_FORMAT}")
        counts = z["counts"]
        arrays = {k: z[k] for k in MASK_KEYS}
    ends = np.cumsum(counts)
    starts = ends - counts
    return meta, [{k: arrays[k][a:b] for k in MASK_KEYS} for a, b in zip(starts, ends)]


def unpack(cfg: ProposalTrainConfig, path: Path, log: bool = True) -> int:
    """Fill the cache from a pack: each image's embedding is computed here, its masks are the pack's. Images
    already cached are left as they are. Returns the pack's image count."""
    from samfpga.models.data import sample_function
    from samfpga.predictor import Predictor

    meta, items = read_pack(path)
    folder = cache_folder(cfg)
    if meta["cache_key"] != folder.name:
        raise ValueError(f"proposal target pack {path}: made for cache key {meta['cache_key']}, this config and "
                         f"bundle give {folder.name} (another teacher, split or dense setting)")
    folder.mkdir(parents=True, exist_ok=True)
    pred = Predictor.from_bundle(bundle_dir(cfg), threads=cfg.threads)
    sample = sample_function(cfg.generator, pred.image_size)
    t0 = time.perf_counter()
    for i, masks in enumerate(items):
        f = folder / f"{i:05d}.npz"
        if f.is_file():
            continue
        _write(f, {"embedding": image_embedding(pred, sample(cfg.data_seed, i).image)[0], **masks})
        if log and (i + 1) % 200 == 0:
            print(json.dumps({"unpacked": i + 1, "of": len(items), "s": round(time.perf_counter() - t0, 1)}),
                  flush=True)
    return len(items)
