#!/usr/bin/env bash
# Creates the Python environment of the reference scripts (PyTorch + transformers + peft, CPU;
# bitsandbytes for QLoRA fixtures, through its CPU backend; gguf, which transformers needs to load
# SmolLM2's GGUF file), in .venv-reference at the project root. Optional: neither the Swift build
# nor its tests need it.
#
# PyTorch's CPU-only wheel comes from its own index when that is reachable; otherwise pip installs
# the default wheel from PyPI (on Linux the CUDA build, which runs on the CPU all the same).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=".venv-reference"
cpu_index="https://download.pytorch.org/whl/cpu"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
if "$venv/bin/python" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1] + '/torch/', timeout=15)" "$cpu_index" 2>/dev/null; then
  "$venv/bin/python" -m pip install --quiet torch --index-url "$cpu_index"
else
  "$venv/bin/python" -m pip install --quiet torch
fi
"$venv/bin/python" -m pip install --quiet transformers "peft==0.21.2" safetensors psutil bitsandbytes gguf
"$venv/bin/python" -c "import torch, transformers, peft, bitsandbytes, gguf; print('torch', torch.__version__, '| transformers', transformers.__version__, '| peft', peft.__version__, '| bitsandbytes', bitsandbytes.__version__, '| gguf', gguf.__version__ if hasattr(gguf, '__version__') else 'installed')"
