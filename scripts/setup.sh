#!/usr/bin/env bash
# Sets up everything moat needs on a fresh Debian machine with Rust and Python 3:
# the ONNX Runtime shared library (from the `onnxruntime` wheel on PyPI) in moat's install folder,
# and a release build of the `moat` binary. Idempotent: a second run takes seconds.
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
echo "setup: done (binary: target/$profile/moat, ONNX Runtime: $ort_dir)"
