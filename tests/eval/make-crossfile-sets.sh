#!/usr/bin/env bash
# Builds the four-language repository-context sets (issue 17) with `moat dataset tasks`:
#   tests/eval/crossfile-4lang.jsonl  25 cross-file lines per language (Python, Rust, TypeScript, Go)
#   tests/eval/infile-control.jsonl   40 random lines of the same repositories that need no name
#                                     from another file (every identifier of the line appears in
#                                     the task's own prefix or suffix)
# and the repositories `moat eval --context repo --repos "$MOAT_EVAL_REPOS"` needs, copied to
# $MOAT_EVAL_REPOS (default ~/.cache/moat/eval-repos), outside any git work tree so the index's
# .gitignore handling sees every file:
#   Python      click, h11, httpx2, anyio            (the project's .venv, scripts/setup.sh)
#   TypeScript  msal-common, ajv, cheerio            (editors/vscode/node_modules: `npm ci` there)
#   Go          cobra, logrus, cli, mux              (Debian's golang-github-*-dev packages,
#                                                     fetched with `apt-get download`, not installed)
#   Rust        ropey, dashmap, ignore, tower-lsp-server, serde_json (~/.cargo/registry: crates
#               moat builds with; `moat eval` finds them there itself)
# None of these is in model-assets/train's corpus or was used to tune retrieval.
# Same files + same seed = same tasks.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
moat="${MOAT:-target/release/moat}"
[ -x "$moat" ] || moat=target/debug/moat
moat="$(realpath "$moat")"
repos="${MOAT_EVAL_REPOS:-$HOME/.cache/moat/eval-repos}"
out=tests/eval
seed=7
mkdir -p "$repos"

site="$(ls -d .venv/lib/python3*/site-packages | head -1)"
for p in click h11 httpx2 anyio; do
  rm -rf "${repos:?}/$p"; cp -r "$site/$p" "$repos/$p"; find "$repos/$p" -name __pycache__ -prune -exec rm -rf {} +
done
nm=editors/vscode/node_modules
rm -rf "$repos/msal-common" "$repos/ajv" "$repos/cheerio"
cp -r "$nm/@azure/msal-common/src" "$repos/msal-common"
cp -r "$nm/ajv/lib" "$repos/ajv"
cp -r "$nm/cheerio/src" "$repos/cheerio"
debs="$(mktemp -d)"; trap 'rm -rf "$debs"' EXIT
( cd "$debs" && apt-get download -q golang-github-spf13-cobra-dev golang-github-sirupsen-logrus-dev \
    golang-github-urfave-cli-dev golang-github-gorilla-mux-dev >/dev/null 2>&1 \
  && for d in *.deb; do dpkg -x "$d" x; done )
gocode="$debs/x/usr/share/gocode/src/github.com"
for pair in cobra:spf13/cobra logrus:sirupsen/logrus cli:urfave/cli mux:gorilla/mux; do
  rm -rf "${repos:?}/${pair%%:*}"; cp -r "$gocode/${pair#*:}" "$repos/${pair%%:*}"
done

reg="$(ls -d "$HOME"/.cargo/registry/src/*/ | head -1)"
tmp="$(mktemp -d)"; trap 'rm -rf "$debs" "$tmp"' EXIT
common=(--per-file 2 --seed $seed)
( cd "$repos"
  "$moat" dataset tasks click h11 httpx2 anyio --languages python --kinds cross-file \
    "${common[@]}" --max-tasks 25 --out "$tmp/py.jsonl"
  "$moat" dataset tasks msal-common ajv cheerio --languages typescript --kinds cross-file \
    "${common[@]}" --max-tasks 25 --out "$tmp/ts.jsonl"
  "$moat" dataset tasks cobra logrus cli mux --languages go --kinds cross-file \
    "${common[@]}" --max-tasks 25 --out "$tmp/go.jsonl"
  "$moat" dataset tasks click h11 httpx2 anyio msal-common ajv cheerio cobra logrus cli mux \
    --languages python,typescript,go --kinds random "${common[@]}" --out "$tmp/ctl1.jsonl" )
( cd "$reg"
  "$moat" dataset tasks ropey-1.6.1 dashmap-6.2.1 ignore-0.4.35 tower-lsp-server-0.23.0 \
    serde_json-1.0.154 --languages rust --kinds cross-file "${common[@]}" --max-tasks 25 \
    --out "$tmp/rs.jsonl"
  "$moat" dataset tasks ropey-1.6.1 dashmap-6.2.1 ignore-0.4.35 tower-lsp-server-0.23.0 \
    serde_json-1.0.154 --languages rust --kinds random "${common[@]}" --out "$tmp/ctl2.jsonl" )
cat "$tmp"/{py,rs,ts,go}.jsonl > "$out/crossfile-4lang.jsonl"

# In-file control: random lines whose every identifier (3+ chars) is in the task's own text, 10
# per language, a seeded sample.
python3 - "$tmp" "$out/infile-control.jsonl" "$seed" <<'PY'
import json, random, re, sys
tmp, dest, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
tasks = [json.loads(l) for f in ("ctl1", "ctl2") for l in open(f"{tmp}/{f}.jsonl")]
ident = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
def in_file(t):
    seen = set(ident.findall(t["prefix"])) | set(ident.findall(t["suffix"]))
    return all(w in seen for w in ident.findall(t["expected"]))
rng = random.Random(seed)
out = []
for lang in ("python", "rust", "typescript", "go"):
    pool = [t for t in tasks if t["language"] == lang and in_file(t)]
    out += sorted(rng.sample(pool, min(10, len(pool))), key=lambda t: t["id"])
open(dest, "w").write("".join(json.dumps(t) + "\n" for t in out))
PY
wc -l "$out/crossfile-4lang.jsonl" "$out/infile-control.jsonl"
echo "run: moat eval $out/crossfile-4lang.jsonl --context repo --repos $repos"
