#!/usr/bin/env bash
# Installs the project's external tools into .tools/venv (once per requirements change):
# grpcurl and buf for the contract and end-to-end tests, grpcio-tools to generate a
# Python client from proto/. Needs only python3 and the PyPI registry.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.tools/venv
requirements=scripts/tools-requirements.txt
stamp="$venv/.installed-$(sha256sum "$requirements" | cut -c1-16)"
[[ -f $stamp ]] && exit 0

echo "installing tools into $venv" >&2
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
# Fetch grpcurl's binary now, so the first test does not race on it.
"$venv/bin/grpcurl" -version >/dev/null 2>&1 || true
touch "$stamp"
