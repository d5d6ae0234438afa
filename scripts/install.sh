#!/usr/bin/env bash
# Set up flare_sr on a fresh machine: torch, BasicSR 1.4.2, this package (editable) and its onnx extras
# (FLARE_SR_NO_ONNX=1 skips them).
# BasicSR's setup.py asks for torch at build time, so it is built without isolation, after torch.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="python -m pip install -q --disable-pip-version-check"
python -c 'import torch, torchvision' 2>/dev/null || $PIP "torch==2.14.1" "torchvision==0.29.1"
python -c 'import basicsr' 2>/dev/null || { $PIP cython numpy && $PIP --no-build-isolation "basicsr==1.4.2"; }
$PIP -r requirements.txt pytest pytest-xdist flake8 isort  # the test runner, its workers and the linters CI runs
# Optional extras (pip install -e ".[onnx]"): ONNX export and the ONNX Runtime backend; their tests skip without them.
[ "${FLARE_SR_NO_ONNX:-0}" = 1 ] || $PIP "onnx>=1.16" "onnxruntime>=1.18"
$PIP --no-deps -e .
python -c 'import flare_sr; print("flare_sr", flare_sr.__version__, "ready")'
