#!/usr/bin/env bash
# Runs every measurement whose results are kept in the repository, for one model:
#   - moat eval on each checked-in task set, with context none, file and repo
#     → tests/eval/<date>-<model>-<set>-<context>.json
#   - moat bench with the Python onnxruntime baseline and the plot
#     → bench/results/<date>-<model>.json and .svg
# Usage: bench/scripts/run-all.sh [MODEL_DIR] [THREADS]   (defaults: model-assets/default, 2)
# Needs a release build (scripts/setup.sh) and, for the baseline, python3 with onnxruntime+numpy.
set -euo pipefail
cd "$(dirname "$0")/../.."
model="${1:-model-assets/default}"
threads="${2:-2}"
moat=target/release/moat
[ -x "$moat" ] || { echo "run scripts/setup.sh first (no $moat)" >&2; exit 1; }
date="$(date -u +%F)"
name="$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$model/model.toml" | head -1)"

for set in python-stdlib-heldout multilang-heldout; do
  for context in none file repo; do
    "$moat" eval "tests/eval/$set.jsonl" --model "$model" --threads "$threads" \
      --context "$context" --json "tests/eval/$date-$name-$set-$context.json"
  done
done
"$moat" bench --model "$model" --threads "$threads" --baseline \
  --json "bench/results/$date-$name.json" --plot "bench/results/$date-$name.svg"
