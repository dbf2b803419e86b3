#!/usr/bin/env bash
# Ships a trained run as a model folder of model-assets/ and makes it the default:
#
#   model-assets/train/ship.sh NAME HF_DIR [PRESET] [PRECISION]
#
# Exports HF_DIR (a transformers checkpoint from pretrain.py/finetune.py) with export.py at
# PRECISION (default int8), evaluates it on the pipeline's held-out tasks (work/tasks.jsonl),
# writes MODEL_CARD.md, copies the checkpoint into NAME/hf/ (ecosystem tools load it from there),
# and points model-assets/default at NAME. Needs the training venv (setup.sh) and work/ from a
# pipeline run (corpus, curation and loss figures for the card).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
name="$1"; hf="$(realpath "$2")"; preset="${3:-cpu-small}"; precision="${4:-int8}"
out="$here/../$name"
py="$here/.venv/bin/python"
cd "$here"
# RUNTIME_THREADS=N writes [runtime] threads = N (measure with `moat bench --threads N`).
"$py" export.py --hf "$hf" --out "$out" --precision "$precision" --name "$name" --force \
  --runtime-threads "${RUNTIME_THREADS:-0}"
"$py" eval_nextline.py --model "$out" --tasks work/tasks.jsonl --out "work/eval-$name.json" \
  --samples "work/samples-$name.jsonl"
"$py" model_card.py --model "$out" --work work --preset "$preset" --eval "work/eval-$name.json"
rm -rf "$out/hf" && mkdir -p "$out/hf"
cp "$hf"/{config.json,generation_config.json,model.safetensors,tokenizer.json,tokenizer_config.json} "$out/hf/"
ln -sfn "$name" "$here/../default"
echo "ship: $out is the default model"
