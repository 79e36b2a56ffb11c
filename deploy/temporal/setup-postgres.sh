#!/bin/sh
# Temporal's schema on PostgreSQL, as temporalio/samples-server's compose layout does it:
# temporal-sql-tool (admin-tools image) creates and migrates `temporal` and
# `temporal_visibility`. Idempotent: run on every `docker compose up`, and on upgrades it
# applies the new Temporal schema versions before the new server starts.
# The password comes from SQL_PASSWORD (set from TEMPORAL_DB_PASSWORD in .env).
set -eu
: "${SQL_PASSWORD:?SQL_PASSWORD (TEMPORAL_DB_PASSWORD in .env) is not set}"
HOST=${POSTGRES_SEEDS:-postgresql}
PORT=${DB_PORT:-5432}
USER=${POSTGRES_USER:-temporal}
SCHEMA=/etc/temporal/schema/postgresql/v12

echo "Waiting for PostgreSQL at $HOST:$PORT..."
nc -z -w 10 "$HOST" "$PORT"

sql() {
    temporal-sql-tool --plugin postgres12 --ep "$HOST" -p "$PORT" -u "$USER" "$@"
}

# The databases normally exist already (deploy/postgres/init-databases.sh made them).
sql --db temporal create || echo "database temporal already exists"
sql --db temporal setup-schema -v 0.0
sql --db temporal update-schema -d "$SCHEMA/temporal/versioned"

sql --db temporal_visibility create || echo "database temporal_visibility already exists"
sql --db temporal_visibility setup-schema -v 0.0
sql --db temporal_visibility update-schema -d "$SCHEMA/visibility/versioned"

echo "Temporal schema is set up and at the latest version"
