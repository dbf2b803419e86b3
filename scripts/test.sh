#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this):
# formatting, clippy, the Rust unit and end-to-end tests (real binary, real ONNX models),
# the model-assets checks, the training pipeline on a tiny corpus and the editor integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
MOAT_PROFILE=debug scripts/setup.sh
echo "== cargo fmt"; cargo fmt --all -- --check
echo "== cargo clippy"; cargo clippy --workspace --all-targets -- -D warnings
# The default model is installed by the setup above: tests that use it must not skip here.
export MOAT_REQUIRE_DEFAULT_MODEL=1
echo "== cargo test"; cargo test --workspace
echo "== model-assets checks"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r model-assets/tools/requirements.txt
.venv/bin/python model-assets/tools/verify_test_models.py
echo "== training pipeline (tiny corpus: every step, export, loaded by moat)"
model-assets/train/setup.sh
( cd model-assets/train && MOAT_REQUIRE_TRAINING_STACK=1 .venv/bin/python -m pytest tests -q -p no:cacheprovider )
if [ -x editors/test.sh ]; then
  echo "== editor tests"; editors/test.sh
fi
echo "== all tests passed"
