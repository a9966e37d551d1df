#!/usr/bin/env bash
# Regenerates src/db/schema.rs from the migrations: migrates a scratch database and
# runs `diesel print-schema` (config in diesel.toml, fixes in src/db/schema.patch).
# Installs diesel_cli under .tools/ on first use.
#
#   scripts/gen-schema.sh                  regenerate schema.rs
#   scripts/gen-schema.sh --refresh-patch  rebuild schema.patch first: our array columns
#                                          are NOT NULL with non-null elements, which
#                                          print-schema cannot know (Array<Nullable<T>>)
set -euo pipefail
cd "$(dirname "$0")/.."

DIESEL=.tools/cargo/bin/diesel
if [[ ! -x $DIESEL ]]; then
    cargo install diesel_cli --version '^2.3' --no-default-features --features postgres \
        --root .tools/cargo --locked
fi

base=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432}
db="billing_schema_gen_$$"
url="$base/$db"
tmp=$(mktemp -d)
trap 'psql "$base/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null; rm -rf "$tmp"' EXIT
psql "$base/postgres" -qc "CREATE DATABASE $db" >/dev/null
"$DIESEL" migration run --database-url "$url" >/dev/null

if [[ ${1:-} == --refresh-patch ]]; then
    # The raw print-schema output: same config, without the file and patch settings.
    sed '/^file *=/d; /patch_file/d' diesel.toml > "$tmp/diesel.toml"
    "$DIESEL" print-schema --database-url "$url" --config-file "$tmp/diesel.toml" > "$tmp/schema.orig"
    sed 's/Array<Nullable<\([A-Za-z0-9]*\)>>/Array<\1>/' "$tmp/schema.orig" > "$tmp/schema.new"
    diff -u "$tmp/schema.orig" "$tmp/schema.new" \
        | sed '1s|.*|--- a/src/db/schema.rs|;2s|.*|+++ b/src/db/schema.rs|' > src/db/schema.patch || true
    echo "src/db/schema.patch refreshed"
fi

"$DIESEL" print-schema --database-url "$url" >/dev/null
echo "src/db/schema.rs regenerated"
