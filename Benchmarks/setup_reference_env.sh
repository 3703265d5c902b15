#!/usr/bin/env bash
# Creates the Python environment of the reference scripts (PyTorch + transformers + peft, CPU;
# bitsandbytes for QLoRA fixtures, through its CPU backend),
# in .venv-reference at the project root. Optional: neither the Swift build nor its tests need it.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=".venv-reference"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet torch transformers "peft==0.21.2" safetensors psutil bitsandbytes
"$venv/bin/python" -c "import torch, transformers, peft, bitsandbytes; print('torch', torch.__version__, '| transformers', transformers.__version__, '| peft', peft.__version__, '| bitsandbytes', bitsandbytes.__version__)"
