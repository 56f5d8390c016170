"""Write bundled sample images with prompts: ``python -m samfpga.models.data.samples --out sw/samfpga/assets/samples``.

Each sample ``sample_<i>.png`` comes from the held-out synthetic split; ``sample_<i>.json`` holds the prompt the
runtime demo reads (one positive point at the centre of the largest instance, and that instance's box), and
``prompts.json`` lists all samples with the ground-truth area of the prompted instance, for reference.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from .prompts import centre_point, mask_box
from .synthetic import SyntheticConfig, generate_sample


def write_samples(out: Path, seed: int = 1, count: int = 4, image_size: int = 256) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    index = []
    for i in range(count):
        s = generate_sample(seed, i, SyntheticConfig(image_size=image_size))
        k = int(np.argmax(s.masks.reshape(len(s.masks), -1).sum(1)))
        x, y = centre_point(s.masks[k])
        prompt = {"points": [[x, y]], "labels": [1], "box": list(mask_box(s.masks[k]))}
        name = f"sample_{i}"
        Image.fromarray(s.image).save(out / f"{name}.png", optimize=True)
        (out / f"{name}.json").write_text(json.dumps(prompt) + "\n")
        index.append({"image": f"{name}.png", "split_seed": seed, "index": i, "instance": k, "kind": s.kinds[k],
                      "area": int(s.masks[k].sum()), **prompt})
    (out / "prompts.json").write_text(json.dumps(index, indent=1) + "\n")
    return index


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=4)
    ap.add_argument("--image-size", type=int, default=256)
    args = ap.parse_args(argv)
    write_samples(args.out, args.seed, args.count, args.image_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
