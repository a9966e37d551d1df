#!/usr/bin/env bash
# Regenerates src/db/schema.rs from the migrations: migrates a scratch database and
# runs `diesel print-schema` (config in diesel.toml, fixes in src/db/schema.patch).
# Installs diesel_cli under .tools/ on first use.
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
trap 'psql "$base/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null' EXIT
psql "$base/postgres" -qc "CREATE DATABASE $db" >/dev/null
"$DIESEL" migration run --database-url "$url" >/dev/null
"$DIESEL" print-schema --database-url "$url" >/dev/null
echo "src/db/schema.rs regenerated"
