#!/usr/bin/env bash
# Builds and runs the Go example with Debian's Go packages (GOPATH mode: Debian ships
# grpc-go and protobuf-go as sources under /usr/share/gocode, not as modules), so it
# needs no module proxy. `scripts/gen-clients go` first.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
gopath="$(mktemp -d)"
trap 'rm -rf "$gopath"' EXIT
mkdir -p "$gopath/src"
ln -s "$here" "$gopath/src/billingexample"
cd "$gopath/src/billingexample"
GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOCACHE="${GOCACHE:-$here/../../target/go-cache}" \
    go build -o "$gopath/example" .
"$gopath/example"
