#!/usr/bin/env bash
# The Python environment of Interop/check_with_peft.py is the reference one (.venv-reference: torch,
# transformers, peft 0.21.2, safetensors, bitsandbytes; PyYAML comes with transformers): one script makes it for both.
exec "$(dirname "$0")/../Benchmarks/setup_reference_env.sh" "$@"
