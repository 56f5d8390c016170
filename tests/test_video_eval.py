"""``samfpga eval --video``: the J&F report (JSON + Markdown) and its checks on a reused baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from samfpga.models.evaluate import main as eval_main

TINY = Path(__file__).parent / "runtime" / "data" / "tiny_video_bundle"


def test_eval_video_writes_json_and_markdown(tmp_path):
    out = tmp_path / "jf.json"
    rc = eval_main(["--video", "--video-bundle", str(TINY), "--no-baseline", "--videos", "1", "--frames", "3",
                    "--out", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["videos"] == 1 and res["frames"] == 3 and "baseline" not in res
    assert 0.0 <= res["tracker"]["J&F"] <= 1.0
    assert res["tracker"]["J&F"] == res["per_video"][0]["tracker"]["J&F"]
    md = out.with_suffix(".md").read_text()
    assert f"**{res['tracker']['J&F']:.3f}**" in md and "samfpga eval --video" in md

    # the same split's report can stand in for the baseline; another split cannot
    earlier = dict(res, baseline=res["tracker"], per_video=[dict(r, baseline=r["tracker"]) for r in res["per_video"]])
    prev = tmp_path / "earlier.json"
    prev.write_text(json.dumps(earlier))
    rc = eval_main(["--video", "--video-bundle", str(TINY), "--baseline-json", str(prev), "--videos", "1",
                    "--frames", "3", "--out", str(tmp_path / "again.json")])
    again = json.loads((tmp_path / "again.json").read_text())
    assert rc == 0 and again["baseline"] == res["tracker"] and again["tracker"] == res["tracker"]
    with pytest.raises(SystemExit) as e:
        eval_main(["--video", "--video-bundle", str(TINY), "--baseline-json", str(prev), "--videos", "1",
                   "--frames", "4"])
    assert e.value.code == 2
