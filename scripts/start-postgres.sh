#!/usr/bin/env bash
# Start the local PostgreSQL 15 used by the tests and print its URL.
#
# Idempotent: safe to run again while the server is already up. Creates (if missing) the
# role `effscale` (password `effscale`) and the databases `effscale_test` and `effscale_test2`
# owned by it. Needs root (it runs psql as the `postgres` OS user through peer auth).
# Installs PostgreSQL with apt-get when it is missing (the CI machine is Debian, root).
set -euo pipefail

PG_VERSION="${PG_VERSION:-15}"
PG_CLUSTER="${PG_CLUSTER:-main}"
PG_PORT="${PG_PORT:-5432}"
ROLE="effscale"
PASSWORD="effscale"
DATABASES=(effscale_test effscale_test2)
URL="postgresql+psycopg2://${ROLE}:${PASSWORD}@127.0.0.1:${PG_PORT}/effscale_test"

die() { echo "start-postgres: error: $*" >&2; exit 1; }
log() { echo "start-postgres: $*" >&2; }

[ "$(id -u)" -eq 0 ] || die "run as root (needs to act as the postgres OS user)"

as_postgres() {
    if command -v runuser >/dev/null 2>&1; then
        runuser -u postgres -- "$@"
    else
        su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
    fi
}

psql_admin() {  # psql as the superuser, on the maintenance database, failing on SQL errors
    as_postgres psql --no-psqlrc -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres "$@"
}

# 1. Installed?
if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ ! -x "/usr/lib/postgresql/${PG_VERSION}/bin/postgres" ]; then
    log "PostgreSQL ${PG_VERSION} not found; installing with apt-get"
    command -v apt-get >/dev/null 2>&1 || die "PostgreSQL is not installed and apt-get is unavailable"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2 || die "apt-get update failed"
    apt-get install -y -q postgresql >&2 || die "apt-get install postgresql failed"
    if [ ! -x "/usr/lib/postgresql/${PG_VERSION}/bin/postgres" ]; then
        # The distribution may ship another major version: use the newest installed one.
        PG_VERSION="$(ls /usr/lib/postgresql | sort -n | tail -1)"
        [ -n "$PG_VERSION" ] || die "no PostgreSQL version found after install"
        log "using PostgreSQL ${PG_VERSION}"
    fi
fi

# 2. Cluster exists?
if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "${PG_VERSION} ${PG_CLUSTER}"; then
    log "creating cluster ${PG_VERSION}/${PG_CLUSTER} on port ${PG_PORT}"
    pg_createcluster "$PG_VERSION" "$PG_CLUSTER" --port "$PG_PORT" >&2 \
        || die "pg_createcluster ${PG_VERSION} ${PG_CLUSTER} failed"
fi

# 3. Started?
status="$(pg_lsclusters -h | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1==v && $2==c {print $4}')"
if [ "$status" != "online" ]; then
    log "starting cluster ${PG_VERSION}/${PG_CLUSTER}"
    if ! pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$PG_CLUSTER" start >&2; then
        # Someone else may have started it at the same moment; only fail if it is still down.
        pg_lsclusters -h | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1==v && $2==c {print $4}' \
            | grep -qx online \
            || die "pg_ctlcluster start failed; see /var/log/postgresql/postgresql-${PG_VERSION}-${PG_CLUSTER}.log"
    fi
fi

# 4. Ready? (up to 30 s)
for _ in $(seq 1 60); do
    if pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; then ready=1; break; fi
    sleep 0.5
done
[ "${ready:-0}" = 1 ] || die "PostgreSQL did not accept connections on 127.0.0.1:${PG_PORT} within 30 s"

# 5. Role and databases (idempotent).
psql_admin <<SQL >&2 || die "could not create role ${ROLE}"
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${ROLE}') THEN
        CREATE ROLE ${ROLE} LOGIN PASSWORD '${PASSWORD}';
    ELSE
        ALTER ROLE ${ROLE} LOGIN PASSWORD '${PASSWORD}';
    END IF;
END
\$\$;
SQL
for db in "${DATABASES[@]}"; do
    exists="$(psql_admin -tA -c "SELECT 1 FROM pg_database WHERE datname = '${db}'")" \
        || die "could not query databases"
    if [ "$exists" != "1" ]; then
        log "creating database ${db}"
        if ! psql_admin -c "CREATE DATABASE ${db} OWNER ${ROLE}" >&2; then
            # A concurrent run may have created it first.
            [ "$(psql_admin -tA -c "SELECT 1 FROM pg_database WHERE datname = '${db}'")" = "1" ] \
                || die "could not create database ${db}"
        fi
    fi
    # PostgreSQL 15 no longer grants CREATE on schema public to everyone; the owner needs it.
    as_postgres psql --no-psqlrc -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d "$db" \
        -c "ALTER SCHEMA public OWNER TO ${ROLE}" >&2 || die "could not give ${ROLE} schema public in ${db}"
done

# 6. Password login over TCP works?
PGPASSWORD="$PASSWORD" psql --no-psqlrc -X -q -h 127.0.0.1 -p "$PG_PORT" -U "$ROLE" -d effscale_test \
    -tA -c "SELECT 1" >/dev/null \
    || die "role ${ROLE} cannot log in with a password on 127.0.0.1:${PG_PORT} (check pg_hba.conf)"

echo "$URL"
