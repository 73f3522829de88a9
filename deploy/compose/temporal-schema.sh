#!/bin/sh
# Creates Temporal's two databases on PostgreSQL and brings both schemas to the version that
# ships in this admin-tools image (the same release as the server). It runs on every
# `docker compose up` and is safe to: create-database ignores a database that exists,
# setup-schema only adds the version tables, update-schema applies only missing versions.
#
# From the environment: SQL_HOST, SQL_PORT, SQL_USER, SQL_PASSWORD (read by temporal-sql-tool).
set -eu

schemas=/etc/temporal/schema/postgresql/v12

for pair in temporal:temporal temporal_visibility:visibility; do
  database=${pair%%:*}
  schema=${pair#*:}
  echo "database $database: schema $schemas/$schema"
  temporal-sql-tool --plugin postgres12 --db "$database" create-database
  temporal-sql-tool --plugin postgres12 --db "$database" setup-schema -v 0.0
  temporal-sql-tool --plugin postgres12 --db "$database" update-schema -d "$schemas/$schema/versioned"
done
