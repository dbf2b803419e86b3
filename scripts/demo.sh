#!/usr/bin/env bash
# The product on a real file: sets up (scripts/setup.sh: ONNX Runtime, release build, the default
# model fetched and imported once), checks the installation (`moat doctor`), then takes a real
# Python file from this machine's standard library, blanks a few real lines (keeping their
# indentation, where an editor leaves the cursor after Enter) and asks moat to write each line
# back, through the same pipeline the language server uses. Each line shows what the file had
# beside what moat suggested.
# Usage: scripts/demo.sh [FILE:LINE:COL ...]   (complete at your own positions instead)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
moat=target/release/moat
$moat doctor
if [ $# -gt 0 ]; then
  for loc in "$@"; do $moat complete --json "$loc"; done
  exit 0
fi
file=$(python3 -c 'import json; print(json.__file__.replace("__init__.py", "encoder.py"))')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo
echo "== $file: real lines blanked, then completed by moat =="
for line in 202 216 233 276 286; do
  expected=$(sed -n "${line}p" "$file")
  indent=$(printf '%s' "$expected" | sed -E 's/^([[:space:]]*).*/\1/')
  col=$(( ${#indent} + 1 ))
  copy="$work/encoder.py"
  # the file as the editor has it: the line emptied down to its indentation
  awk -v n="$line" -v ind="$indent" 'NR == n { print ind; next } { print }' "$file" > "$copy"
  started=$(date +%s%N)
  got=$($moat complete "$copy:$line:$col")
  ms=$(( ($(date +%s%N) - started) / 1000000 ))
  first=$(printf '%s\n' "$got" | head -n1)
  mark="≠"; [ "$first" = "${expected#"$indent"}" ] && mark="="
  printf -- '--- line %s (%s ms, process start and model load included)\n  file: %s\n  moat: %s%s  %s\n' \
    "$line" "$ms" "${expected#"$indent"}" "$first" \
    "$([ "$(printf '%s\n' "$got" | wc -l)" -gt 1 ] && echo " (+$(( $(printf '%s\n' "$got" | wc -l) - 1 )) more lines)")" "$mark"
done
echo
echo "Editors: see README.md (VS Code, Neovim, Helix) — they run \`$moat serve\`."
