#!/usr/bin/env bash
# Generates the Python client of proto/ into the directory given (default
# tests/e2e/gen) with grpcio-tools, the way a team in another language would.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$root/tests/e2e/gen}"
python="${PYTHON:-$root/.tools/venv/bin/python}"
mkdir -p "$out"
# Every file under proto/, including the vendored google/rpc ones the contract imports.
mapfile -t protos < <(cd "$root/proto" && find . -name '*.proto' | sort)
(cd "$root/proto" && "$python" -m grpc_tools.protoc -I . --python_out="$out" --grpc_python_out="$out" "${protos[@]}")
