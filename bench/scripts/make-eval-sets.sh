#!/usr/bin/env bash
# Regenerates the checked-in eval task sets under tests/eval/ with `moat dataset tasks`.
# Machine-dependent inputs (recorded in tests/eval/README.md): the Python 3.11 stdlib of
# `python3`, and crates in ~/.cargo/registry/src. Same files + same seed = same tasks.
set -euo pipefail
cd "$(dirname "$0")/../.."
moat="${MOAT:-target/release/moat}"
[ -x "$moat" ] || moat=target/debug/moat
moat="$(realpath "$moat")"
stdlib="$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')"
reg="$(ls -d "$HOME"/.cargo/registry/src/*/ | head -1)"
out=tests/eval
seed=7

# Python: stdlib modules that sort after `numbers.py`, i.e. outside the tiny test models' corpus
# (make_test_models.py takes the first 4.5 MB of the sorted stdlib), and that a code model's
# training corpus should exclude too.
py_modules=(plistlib quopri sched shlex sndhdr tabnanny textwrap uu wave xdrlib zipapp
            webbrowser pprint rlcompleter runpy secrets selectors symtable timeit tracemalloc)
for i in "${!py_modules[@]}"; do py_modules[$i]="$stdlib/${py_modules[$i]}.py"; done
"$moat" dataset tasks "${py_modules[@]}" --per-file 12 --max-tasks 200 --seed $seed \
  --out "$out/python-stdlib-heldout.jsonl"

# Other languages: crates fetched after the tiny models were made (ureq, ctrlc, indicatif, ring),
# tree-sitter grammar sources (JavaScript; these may overlap the tiny models' JS corpus) and
# shell scripts shipped inside crates.
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
( cd "$reg"
  "$moat" dataset tasks ureq-3.5.2 ctrlc-3.5.3 indicatif-0.18.6 --languages rust \
    --per-file 3 --max-tasks 40 --seed $seed --out "$tmp/1.jsonl"
  "$moat" dataset tasks ring-0.17.14 --languages c --per-file 3 --max-tasks 30 --seed $seed \
    --out "$tmp/2.jsonl"
  "$moat" dataset tasks tree-sitter-*/grammar.js tree-sitter-typescript-0.23.2/common \
    --languages javascript --per-file 4 --max-tasks 20 --seed $seed --out "$tmp/3.jsonl"
  "$moat" dataset tasks zerocopy-0.8.64/ci bitpacking-0.9.3/ci untrusted-0.9.0/mk \
    arc-swap-1.9.5/ci-check.sh oneshot-0.1.13/check_mem_leaks.sh encode_unicode-1.0.0/do.sh \
    --languages bash --per-file 3 --max-tasks 20 --seed $seed --out "$tmp/4.jsonl" )
cat "$tmp"/{1,2,3,4}.jsonl > "$out/multilang-heldout.jsonl"

# Repository-level: lines that use a name defined in another file of the same repository, from
# repositories outside model-assets/train's corpus: crates this workspace builds with (so
# `moat eval --context repo` finds them in ~/.cargo/registry on any machine that built moat)
# and the pip and setuptools packages of the project's .venv (made by scripts/setup.sh).
site="$(ls -d .venv/lib/python3*/site-packages | head -1)"
( cd "$reg"
  "$moat" dataset tasks ropey-1.6.1 dashmap-6.2.1 ureq-3.5.2 ignore-0.4.35 anyhow-1.0.105 \
    tower-lsp-server-0.23.0 ort-2.0.0-rc.15 crossbeam-channel-0.5.17 clap_builder-4.6.7 \
    --languages rust --kinds cross-file --per-file 2 --max-tasks 120 --seed $seed \
    --out "$tmp/5.jsonl" )
( cd "$site"
  "$moat" dataset tasks pip setuptools --languages python --kinds cross-file --per-file 2 \
    --max-tasks 80 --seed $seed --out "$tmp/6.jsonl" )
cat "$tmp"/{5,6}.jsonl > "$out/crossfile-heldout.jsonl"

# The smoke subset the cargo test runs (fast in a debug build): every 8th task of
# corpus-heldout.jsonl (made by model-assets/train/make_tasks.py from the training pipeline's
# held-out packages: 8 languages), every 10th cross-file task and every 4th Bash task.
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
held = open(f"{out}/corpus-heldout.jsonl").read().splitlines()[::8]
cross = open(f"{out}/crossfile-heldout.jsonl").read().splitlines()[::10]
bash = [l for l in open(f"{out}/multilang-heldout.jsonl").read().splitlines()
        if json.loads(l)["language"] == "bash"][::4]
open(f"{out}/smoke.jsonl", "w").write("\n".join(held + cross + bash) + "\n")
PY
wc -l "$out"/*.jsonl
