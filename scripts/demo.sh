#!/usr/bin/env bash
# The product on a real file: sets up (scripts/setup.sh), checks the installation
# (`moat doctor`), then asks for completions in a real Python file from this machine's Python
# standard library, at a few places, through the same pipeline the language server uses.
# Usage: scripts/demo.sh [FILE:LINE:COL ...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
moat=target/release/moat
$moat doctor
if [ $# -gt 0 ]; then
  for loc in "$@"; do $moat complete --json "$loc"; done
  exit 0
fi
file=$(python3 -c 'import json, os; print(json.__file__.replace("__init__.py", "encoder.py"))')
echo
echo "== completions in $file (line:col → suggestion) =="
for loc in 200:9 250:13 300:9; do
  line=${loc%%:*}
  echo "--- line $line: $(sed -n "${line}p" "$file" | cut -c1-70)"
  $moat complete --json "$file:$loc"
done
echo
echo "Editors: see README.md (VS Code, Neovim, Helix) — they run \`$moat serve\`."
