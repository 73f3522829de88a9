#!/bin/sh
# Creates the workers' role on the warehouse: no superuser, only what docs/deploying.md ("The
# workers' database role") lists. The postgres image runs it once, when it first makes the data
# directory, as the superuser POSTGRES_USER, which only an operator uses.
#
# From the environment: POSTGRES_USER, POSTGRES_DB, WAREHOUSE_DB_PASSWORD.
set -eu
: "${WAREHOUSE_DB_PASSWORD:?the password of the workers' role}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  --set role=backfill --set database="$POSTGRES_DB" --set password="$WAREHOUSE_DB_PASSWORD" <<'SQL'
CREATE ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'password';
-- CREATE makes the backfill schema on the first start; the datasets' views go there too (search_path "$user").
GRANT CONNECT, TEMPORARY, CREATE ON DATABASE :"database" TO :"role";
SQL
