#!/usr/bin/env bash
# Creates model-assets/train/.venv with the pinned training stack (requirements.txt), or
# leaves it alone when it already matches requirements.txt (a stamp holds its sha256).
# ~3.5 GB download on the first run (PyPI's torch pulls its CUDA runtime wheels; see
# requirements.txt); pip's cache makes later runs on the same machine cheap.
set -euo pipefail
cd "$(dirname "$0")"
stamp=.venv/.requirements.sha256
want="$(sha256sum requirements.txt | cut -d' ' -f1)"
if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "model-assets/train: installing the training stack into .venv (first run: a few minutes)"
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
echo "$want" > "$stamp"
