"""A small package with token-batched layers for the board-environment driver tests
(tests/runtime/test_token_batch_board.py; compiler environment).

    .venv/bin/python -m tests.support.token_batch_package --out tests/runtime/data/tiny_token_batch

Two MVAU + Requant pairs in a row (32 -> 16 -> 32 channels over 6 tokens, seeded), fused onto token-batched units
(B = 4) with ``UseTokenBatchMVU`` and given DDR offsets; written as the build's package export writes it
(``write_export``: graph, driver.json with its ``token_batch`` section, the DDR image), plus ``expected.npz``:
a seeded input and FINN's python execution of the unfused pairs on it. tests/test_token_batch_op.py regenerates it
and compares with the committed files.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.package_files import main_for, write_package


def write(out: Path) -> None:
    from samfpga.hw.custom_ops.token_batch import UseTokenBatchMVU, assign_ddr_offsets, ddr_image
    from tests.test_token_batch_op import _chain, _run

    model, x = _chain([(32, 16, 8, 4), (16, 32, 4, 8)], 6, seed=11)
    want = _run(model, x)
    fused, _ = assign_ddr_offsets(model.transform(UseTokenBatchMVU(batch=4)))
    write_package(out, fused, x, want, ddr_image(fused))


main = main_for(__doc__, write)


if __name__ == "__main__":
    raise SystemExit(main())
