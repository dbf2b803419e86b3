#!/usr/bin/env bash
# Reliability and security figures (issue 16; README "Reliability").
#
#   scripts/reliability.sh quick   # what CI runs anyway (cargo test --workspace does): ~1 minute
#   scripts/reliability.sh long    # the long runs behind README's table (release build; ~30 min
#                                  # on 2 cores), each printing its figures
#
# Long runs, one by one (each is also a single command of its own):
#   transport fuzz   MOAT_FUZZ_ITERS=1000000 cargo test --release -p moat-lsp transport::fuzz -- --nocapture
#   pipeline fuzz    MOAT_FUZZ_ITERS=100000 cargo test --release -p moat-complete --test fuzz_pipeline -- --include-ignored --nocapture
#   edit fuzz        MOAT_FUZZ_CASES=32000 cargo test --release -p moat-text --test fuzz_edits -- --nocapture --test-threads 1
#   index crashes    MOAT_CRASH_ITERS=300 cargo test --release -p moat-index --test crash -- --nocapture
#   clean exit       MOAT_EXIT_ROUNDS=100 cargo test --release -p moat-e2e --test clean_exit -- --nocapture
#   soak             MOAT_SOAK_KEYSTROKES=10000 cargo test --release -p moat-e2e --test soak -- --nocapture
#   storm / load     cargo test --release -p moat-e2e --test storm -- --nocapture --test-threads 1
#   secrets          cargo test --release -p moat-e2e --test security -- --nocapture
#   dataset crashes  MOAT_CRASH_ITERS=20 cargo test --release -p moat-e2e --test crash_dataset -- --nocapture
#   import crashes   (cd model-assets/train && .venv/bin/python -m pytest tests/test_import_crash.py -q)
# Everything runs under `nice`: the machine stays usable.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-quick}
run() {
    echo "== $*"
    local started=$SECONDS
    nice -n 10 "$@"
    echo "   ($((SECONDS - started)) s)"
}

case "$mode" in
quick)
    run cargo build -p moat
    run cargo test -p moat-lsp transport
    run cargo test -p moat-text --test fuzz_edits -- --nocapture --test-threads 1
    run cargo test -p moat-index --test crash --test security -- --nocapture
    run cargo test -p moat-model --lib remote
    run cargo test -p moat-e2e --test clean_exit --test soak --test storm --test security --test crash_dataset -- --nocapture --test-threads 1
    (cd model-assets/train && run .venv/bin/python -m pytest tests/test_import_crash.py -q -p no:cacheprovider)
    ;;
long)
    run cargo build --release -p moat
    run env MOAT_FUZZ_ITERS=1000000 MOAT_FUZZ_SEED=1 cargo test --release -p moat-lsp transport::fuzz -- --nocapture
    run env MOAT_FUZZ_CASES=32000 cargo test --release -p moat-text --test fuzz_edits -- --nocapture --test-threads 1
    run env MOAT_CRASH_ITERS=300 cargo test --release -p moat-index --test crash -- --nocapture
    run env MOAT_EXIT_ROUNDS=100 cargo test --release -p moat-e2e --test clean_exit -- --nocapture
    run env MOAT_SOAK_KEYSTROKES=10000 cargo test --release -p moat-e2e --test soak -- --nocapture --test-threads 1
    run cargo test --release -p moat-e2e --test storm -- --nocapture --test-threads 1
    run cargo test --release -p moat-e2e --test security -- --nocapture
    run env MOAT_CRASH_ITERS=20 cargo test --release -p moat-e2e --test crash_dataset -- --nocapture
    (cd model-assets/train && run .venv/bin/python -m pytest tests/test_import_crash.py -q -p no:cacheprovider)
    ;;
*)
    echo "usage: $0 quick|long" >&2
    exit 2
    ;;
esac
