#!/bin/sh
# Runs once, when the PostgreSQL volume is first initialised (docker-entrypoint-initdb.d):
# one role and database for DeskClone, one role owning Temporal's two databases.
# Passwords come from the environment (.env), passed to psql as variables, never inlined.
set -eu
: "${DESKCLONE_DB_PASSWORD:?set DESKCLONE_DB_PASSWORD in .env}"
: "${TEMPORAL_DB_PASSWORD:?set TEMPORAL_DB_PASSWORD in .env}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v app_password="$DESKCLONE_DB_PASSWORD" \
    -v temporal_password="$TEMPORAL_DB_PASSWORD" <<'SQL'
CREATE ROLE deskclone LOGIN PASSWORD :'app_password';
CREATE DATABASE deskclone OWNER deskclone;
-- CREATEDB lets temporal-sql-tool's `create` run against a server set up without this script.
CREATE ROLE temporal LOGIN CREATEDB PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
SQL
echo "deskclone, temporal and temporal_visibility databases created"
