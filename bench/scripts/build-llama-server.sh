#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` (an OpenAI-compatible /v1/completions server) outside the
# repository, from the llama-cpp-python sdist on PyPI (its vendor/llama.cpp), for the `[remote]`
# backend test (server/moat/tests/remote_llama_server.rs) and for `moat eval` against a server.
#
#   bench/scripts/build-llama-server.sh [WORK_DIR]     # default /tmp/llama
#
# Prints the binary's path on its last line. Nothing is copied into the repository. cmake and
# ninja come from PyPI (a venv in WORK_DIR); JOBS (default 2) and nice 19 keep a shared machine
# usable (~25 min on a busy 2-core machine).
set -euo pipefail
work="$(mkdir -p "${1:-/tmp/llama}" && cd "${1:-/tmp/llama}" && pwd)"
version="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
cd "$work"
[ -x venv/bin/cmake ] || { python3 -m venv venv && venv/bin/pip install -q cmake ninja; }
[ -f "llama_cpp_python-$version.tar.gz" ] ||
  venv/bin/pip download -q --no-deps "llama-cpp-python==$version" -d .
[ -d "llama_cpp_python-$version" ] || tar xzf "llama_cpp_python-$version.tar.gz"
src="$work/llama_cpp_python-$version/vendor/llama.cpp"
export PATH="$work/venv/bin:$PATH"
nice -n 19 cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=ON -DBUILD_SHARED_LIBS=OFF >&2
nice -n 19 cmake --build "$work/build" --target llama-server -j "${JOBS:-2}" >&2
echo "$work/build/bin/llama-server"
