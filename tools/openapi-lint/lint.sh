#!/usr/bin/env bash
# Lints the committed OpenAPI document with Redocly's and Spectral's recommended rules.
# Fails on any error or warning. Needs Node.js and npm; installs the pinned linters locally.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
document="$here/../../src/Api/openapi/openapi.json"
cd "$here"
[ -x node_modules/.bin/redocly ] && [ -x node_modules/.bin/spectral ] || npm ci --no-audit --no-fund --loglevel=error >/dev/null
node_modules/.bin/redocly lint "$document" --config redocly.yaml --max-problems 50 2>&1 | grep -v '[║╔╚]' | sed '/^\s*$/d'
# redocly exits non-zero on errors only; warnings are failures here too.
if node_modules/.bin/redocly lint "$document" --config redocly.yaml --format=json 2>/dev/null | grep -q '"severity": *"warn'; then
  echo "redocly: warnings found"; exit 1
fi
node_modules/.bin/spectral lint "$document" --ruleset .spectral.yaml --fail-severity warn
