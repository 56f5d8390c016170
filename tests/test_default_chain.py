"""The bounded training chain of the bundled default (``samfpga.models.training.default_chain``), run on the CPU with
a tiny budget and pool: every stage calibrates, trains at least one step of its own schedule, hands its model to the
next (teacher -> teacher_ft -> student pretraining -> distillation -> rewindow -> 4x4-window distillation), and the
chain leaves the candidate default, its teacher, the logs and a summary in --out."""

from __future__ import annotations

import json

from samfpga.models import build_sam
from samfpga.models.training.default_chain import SHARES, main


def test_chain_runs_every_stage_within_a_small_budget(tmp_path):
    out = tmp_path / "out"
    rc = main(["--budget-s", "1", "--out", str(out), "--work", str(tmp_path / "work"), "--images", "12",
               "--batch", "2", "--workers", "1", "--threads", "1", "--device", "cpu", "--amp", "none",
               "--calib-steps", "2", "--set", "click_rounds=1", "--set", "instances_per_image=2"])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["logs.jsonl", "student_w4.pt", "summary.json", "teacher_ft.pt"]
    s = json.loads((out / "summary.json").read_text())
    assert [x["stage"] for x in s["stages"]] == list(SHARES)
    for x in s["stages"]:
        # a 1 s budget is spent by the first calibration: every stage still runs its minimum of one step
        assert x["steps_planned"] == 1 and x["steps_done"] == 1 and x["calibration_s_per_step"] > 0
    logs = [json.loads(line) for line in (out / "logs.jsonl").read_text().splitlines()]
    assert {r["stage"] for r in logs} == set(SHARES) and all(r["total"] > 0 for r in logs)
    student = build_sam(checkpoint=out / "student_w4.pt")
    assert student.image_encoder.img_size == 256
    assert [layer.blocks[0].window_size for layer in student.image_encoder.layers[1:]] == [4, 4, 4]
    assert build_sam(checkpoint=out / "teacher_ft.pt").image_encoder.img_size == 256
