#!/bin/sh
# One Celery worker executing Dagster steps. Run it under a process supervisor on every worker
# host, from the repository root (the code must be importable), with the same environment as the
# webserver and the daemon (deploy/celery/workspace.yaml): DAGSTER_HOME (holding
# deploy/celery/dagster.yaml), DAGSTER_PG_URL, METASYNC_DATABASE_URL and METASYNC_OMS_DATABASE_URL
# (Postgres), METASYNC_VAULT_KEY, METASYNC_GRAPH_BASE_URL, METASYNC_APP_SECRET,
# METASYNC_CELERY_BROKER and METASYNC_CELERY_QUEUE (the runs send steps there; QUEUE below must match).
#   WORKER_NAME   unique per worker (default: the host name)
#   QUEUE         the Celery queue (default: metasync, as in celery.yaml)
#   CONCURRENCY   step processes in this worker (default: 1 per worker; scale by adding workers)
set -eu
cd "$(dirname "$0")/../.."
exec dagster-celery worker start \
    -A dagster_celery.app \
    -y deploy/celery/celery.yaml \
    -q "${QUEUE:-metasync}" \
    -n "${WORKER_NAME:-$(hostname)}" \
    -- --concurrency="${CONCURRENCY:-1}"
