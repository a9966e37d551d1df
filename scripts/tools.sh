#!/usr/bin/env bash
# Installs the project's external tools (once per change of what they are pinned by):
# into .tools/venv grpcurl and buf for the contract and end-to-end tests, grpcio-tools
# to generate a Python client from proto/ (needs python3 and the PyPI registry); into
# examples/typescript/node_modules protoc-gen-es, Connect-ES and TypeScript for the
# TypeScript client (needs Node 20 and the npm registry).
set -euo pipefail
cd "$(dirname "$0")/.."
# Tests generating clients at once call this together: one installs, the others wait.
mkdir -p .tools
exec 9>.tools/install.lock
flock 9

venv=.tools/venv
requirements=scripts/tools-requirements.txt
stamp="$venv/.installed-$(sha256sum "$requirements" | cut -c1-16)"
# jq: the README's walk-through (run by the tests) keeps ids from answers with it.
if ! command -v jq >/dev/null; then
    echo "installing jq from Debian's packages" >&2
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo=sudo
    $sudo apt-get install -y -q jq >&2
fi
node_modules=examples/typescript/node_modules
node_stamp="$node_modules/.installed-$(sha256sum examples/typescript/package-lock.json | cut -c1-16)"
if [[ ! -f $node_stamp ]]; then
    echo "installing the TypeScript client's packages into $node_modules" >&2
    npm ci --prefix examples/typescript --no-audit --no-fund --loglevel=error >&2
    touch "$node_stamp"
fi
[[ -f $stamp ]] && exit 0

echo "installing tools into $venv" >&2
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
# Fetch grpcurl's binary now, so the first test does not race on it.
"$venv/bin/grpcurl" -version >/dev/null 2>&1 || true
touch "$stamp"
