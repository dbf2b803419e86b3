#!/usr/bin/env bash
# Optional side-by-side (not in CI): llama.cpp on the same weights as moat's default model.
#
#   bench/scripts/llamacpp.sh LLAMA_CPP_DIR HF_DIR [DEPTH] > bench/results/DATE-llamacpp.json
#
# LLAMA_CPP_DIR: a llama.cpp source tree with llama-bench and llama-quantize built, e.g. from the
# llama-cpp-python sdist on PyPI (vendor/llama.cpp; see bench/README.md for the cmake line).
# HF_DIR: the model's transformers checkpoint (model-assets/train/work/runs/<run>/hf).
# Python: model-assets/train/.venv (torch, transformers; llama.cpp's gguf-py comes from its tree).
#
# Converts to GGUF F32 and Q8_0, then runs llama-bench on $THREADS (default 2) threads for the keystroke step of
# bench/README.md: with DEPTH tokens already in the KV cache, prefill 1 token (pp1) and generate
# 8 (tg8). Prints llama-bench's JSON (one object per model and test).
set -euo pipefail
llama="$(realpath "$1")"; hf="$(realpath "$2")"; depth="${3:-400}"
here="$(cd "$(dirname "$0")" && pwd)"
py="$here/../../model-assets/train/.venv/bin/python"
out="$(mktemp -d)"; trap 'rm -rf "$out"' EXIT
"$py" "$here/llamacpp_convert.py" "$llama" "$hf" --outtype f32 --outfile "$out/model-f32.gguf" >&2
"$llama/build/bin/llama-quantize" "$out/model-f32.gguf" "$out/model-q8_0.gguf" Q8_0 >&2
"$llama/build/bin/llama-bench" -m "$out/model-f32.gguf" -m "$out/model-q8_0.gguf" -t "${THREADS:-2}" \
  -p 1 -n 8 -d "$depth" -r 10 -o json
