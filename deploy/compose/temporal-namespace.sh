#!/bin/sh
# Registers the namespace backfill runs in ($TEMPORAL_NAMESPACE, default `default`); the server
# image creates none by itself. Does nothing when it is already registered. Retries for a
# minute: right after the frontend turns healthy, history may still be joining.
#
# From the environment: TEMPORAL_ADDRESS (read by the temporal CLI), TEMPORAL_NAMESPACE,
# NAMESPACE_RETENTION (how long closed workflow histories are kept; default 7 days).
set -eu

namespace=${TEMPORAL_NAMESPACE:-default}
retention=${NAMESPACE_RETENTION:-168h}

for attempt in $(seq 1 30); do
  if temporal operator namespace describe --namespace "$namespace" >/dev/null 2>&1; then
    echo "namespace $namespace is registered"
    exit 0
  fi
  temporal operator namespace create --namespace "$namespace" --retention "$retention" ||
    { echo "attempt $attempt failed; retrying" >&2; sleep 2; }
done
echo "namespace $namespace could not be registered at $TEMPORAL_ADDRESS" >&2
exit 1
