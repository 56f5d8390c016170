"""The bundled default's training chain (``make train-default``) as one bounded run: every stage's length fitted
to a share of a wall-time budget, for a lent GPU's few minutes (or a longer CPU run).

    PYTHONPATH=sw:models:hw python -m samfpga.models.training.default_chain --budget-s 480 --out DIR \
        [--work /tmp/samfpga_chain] [--images 20000] [--batch 32] [--workers 16] [--device auto] [--amp bf16]

Stages, as ``make train-default`` runs them (the committed configs in ``training/configs``): the teacher supervised
from scratch, the teacher's second stage, the student's supervised pretraining, the student's full-stage
distillation from the teacher, then ``rewindow`` 8,4,4,4 and the 4x4-window student's distillation from the
8x8 one. Each stage first runs ``--calib-steps`` steps into a scratch directory to measure its seconds per step on
this machine, then runs its own schedule of as many steps as its share of the budget left allows (shares
``SHARES``; warm-up scaled with the schedule; ``time_budget_s`` of the stage as a safety net). The pool of
``--images`` synthetic images and the teachers' embeddings are made once (``--workers`` processes) and count
against the budget.

Writes to ``--out`` (at most 8 files, as a lent machine returns them): ``student_w4.pt`` (the candidate default,
float32), ``teacher_ft.pt`` (its teacher, the reference of ``samfpga.models.evaluate``), ``logs.jsonl`` (every
stage's log lines, tagged) and ``summary.json`` (per stage: steps, seconds per step, wall seconds; the overrides).
Publishing a candidate is a separate, reviewed step (docs/training.md, "A bounded run on a lent GPU").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path

import torch

from .config import TrainConfig, load_config
from .trainer import train

CONFIGS = Path(__file__).parent / "configs"
#: stage -> (config file, share of the budget left when the stage starts, relative to the stages after it)
SHARES: dict[str, tuple[str, float]] = {
    "teacher": ("default_teacher.yaml", 0.35),
    "teacher_ft": ("default_teacher_ft.yaml", 0.10),
    "student_pretrain": ("default_student_pretrain.yaml", 0.10),
    "student": ("default_student.yaml", 0.30),
    "student_w4": ("default_student_w4.yaml", 0.15),
}


@dataclasses.dataclass
class ChainConfig:
    """One bounded run of the chain."""

    budget_s: float
    out: Path
    work: Path = Path("/tmp/samfpga_chain")
    images: int = 20000
    batch: int = 32
    workers: int = 16
    threads: int = 8
    device: str = "auto"
    amp: str = "bf16"
    calib_steps: int = 10
    min_steps: int = 1
    extra: tuple[str, ...] = ()  # more key=value overrides for every stage


def stage_config(name: str, cc: ChainConfig, steps: int | None = None) -> TrainConfig:
    """Stage ``name``'s committed config with the chain's overrides; ``steps`` None: a calibration run."""
    file, _ = SHARES[name]
    work = cc.work
    paths = {
        "teacher_ft": [f"init_checkpoint={work / 'teacher' / 'model.pt'}"],
        "student": [f"teacher_checkpoint={work / 'teacher_ft' / 'model.pt'}",
                    f"init_checkpoint={work / 'student_pretrain' / 'model.pt'}"],
        "student_w4": [f"teacher_checkpoint={work / 'student' / 'model.pt'}",
                       f"init_checkpoint={work / 'student_w4_init.pt'}"],
    }.get(name, [])
    base = [f"device={cc.device}", f"amp={cc.amp}", f"batch_size={cc.batch}", f"threads={cc.threads}",
            f"data.train_images={cc.images}", f"data.workers={cc.workers}", f"data.cache_dir={work / 'data'}",
            "stop_after=null", "save_every=1000000000", "resume=false", *paths, *cc.extra]
    if steps is None:
        return load_config(CONFIGS / file, [*base, f"out_dir={work / 'calib' / name}", "log_every=1",
                                            f"steps={max(cc.calib_steps, 2)}", "warmup_steps=1"])
    ref = load_config(CONFIGS / file)
    warmup = max(1, round(ref.warmup_steps * steps / ref.steps))
    return load_config(CONFIGS / file, [*base, f"out_dir={work / name}", f"steps={steps}",
                                        f"warmup_steps={warmup}", f"log_every={max(1, steps // 50)}"])


def _seconds_per_step(log: Path) -> float:
    """From a calibration log (one line per step): the time of the steps after the first (which carries one-off
    costs: kernel selection, caches)."""
    recs = [json.loads(x) for x in log.read_text().splitlines()]
    if len(recs) < 2:
        raise RuntimeError(f"{log}: calibration needs at least 2 logged steps, found {len(recs)}")
    return max(1e-3, (recs[-1]["elapsed_s"] - recs[0]["elapsed_s"]) / (len(recs) - 1))


def run_chain(cc: ChainConfig) -> dict:
    """Run the five stages within ``cc.budget_s``; returns the summary also written to ``cc.out/summary.json``."""
    from ..image_encoder.rewindow import main as rewindow_main

    t_start = time.time()
    cc.work.mkdir(parents=True, exist_ok=True)
    cc.out.mkdir(parents=True, exist_ok=True)
    summary = {"budget_s": cc.budget_s, "chain": {k: str(v) if isinstance(v, Path) else v
                                                  for k, v in dataclasses.asdict(cc).items()},
               "torch": torch.__version__, "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
               "stages": []}
    names = list(SHARES)
    logs = []
    for i, name in enumerate(names):
        if name == "student_w4":
            rc = rewindow_main([str(cc.work / "student" / "model.pt"), "--windows", "8,4,4,4",
                                "--out", str(cc.work / "student_w4_init.pt")])
            if rc != 0:
                raise RuntimeError("rewindow of the student failed")
        t0 = time.time()
        calib = stage_config(name, cc)
        shutil.rmtree(calib.out_dir, ignore_errors=True)
        train(calib)
        sps = _seconds_per_step(Path(calib.out_dir) / "log.jsonl")
        left = cc.budget_s - (time.time() - t_start)
        weights = [SHARES[n][1] for n in names[i:]]
        share = max(0.0, left) * weights[0] / sum(weights)
        steps = max(cc.min_steps, int(share / sps))
        cfg = stage_config(name, cc, steps)
        cfg = dataclasses.replace(cfg, time_budget_s=max(share * 1.25, 2 * sps))
        shutil.rmtree(cfg.out_dir, ignore_errors=True)
        t1 = time.time()
        final = train(cfg)
        recs = [json.loads(x) for x in (Path(cfg.out_dir) / "log.jsonl").read_text().splitlines()]
        logs += [{"stage": name, **r} for r in recs]
        summary["stages"].append({
            "stage": name, "config": SHARES[name][0], "steps_planned": steps, "steps_done": recs[-1]["step"],
            "stopped": recs[-1].get("stopped"), "calibration_s_per_step": sps, "share_s": share,
            "train_s": time.time() - t1, "stage_s": time.time() - t0, "final_total_loss": recs[-1]["total"],
            "model": str(final)})
        print(f"[chain] {name}: {recs[-1]['step']} steps at {sps:.3f} s/step (calibrated), loss {recs[-1]['total']:.4f}, "
              f"{time.time() - t0:.0f} s; {cc.budget_s - (time.time() - t_start):.0f} s of the budget left", flush=True)
    summary["wall_s"] = time.time() - t_start
    shutil.copyfile(cc.work / "student_w4" / "model.pt", cc.out / "student_w4.pt")
    shutil.copyfile(cc.work / "teacher_ft" / "model.pt", cc.out / "teacher_ft.pt")
    (cc.out / "logs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in logs))
    (cc.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="samfpga.models.training.default_chain", description=__doc__.splitlines()[0])
    ap.add_argument("--budget-s", type=float, required=True, help="wall seconds for the whole chain")
    ap.add_argument("--out", type=Path, required=True)
    d = ChainConfig(budget_s=0.0, out=Path())
    ap.add_argument("--work", type=Path, default=d.work)
    ap.add_argument("--images", type=int, default=d.images)
    ap.add_argument("--batch", type=int, default=d.batch)
    ap.add_argument("--workers", type=int, default=d.workers)
    ap.add_argument("--threads", type=int, default=d.threads)
    ap.add_argument("--device", default=d.device, choices=("auto", "cpu", "cuda"))
    ap.add_argument("--amp", default=d.amp, choices=("none", "bf16"))
    ap.add_argument("--calib-steps", type=int, default=d.calib_steps)
    ap.add_argument("--min-steps", type=int, default=d.min_steps)
    ap.add_argument("--set", dest="extra", action="append", default=[], help="key=value override for every stage")
    a = ap.parse_args(argv)
    if a.budget_s <= 0:
        ap.error("--budget-s must be > 0")
    cc = ChainConfig(budget_s=a.budget_s, out=a.out, work=a.work, images=a.images, batch=a.batch, workers=a.workers,
                     threads=a.threads, device=a.device, amp=a.amp, calib_steps=a.calib_steps,
                     min_steps=a.min_steps, extra=tuple(a.extra))
    s = run_chain(cc)
    print(json.dumps({"wall_s": round(s["wall_s"], 1), "stages": [(x["stage"], x["steps_done"]) for x in s["stages"]]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
