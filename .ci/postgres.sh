#!/usr/bin/env bash
# Installs PostgreSQL from Debian's packages (if missing), starts the default
# cluster on 127.0.0.1:5432, sets the postgres password and creates the
# foureyes_test database. Idempotent: safe to run again on a configured
# machine. Prints the line to eval, so a CI job can do:
#
#   eval "$(.ci/postgres.sh)"
#   go test ./...
#
# Progress goes to stderr; only the export line goes to stdout.
set -euo pipefail

PGPASSWORD_VALUE="${FOUREYES_PG_PASSWORD:-postgres}"
DB="${FOUREYES_PG_DATABASE:-foureyes_test}"
PORT=5432

log() { echo "postgres.sh: $*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
	log "installing postgresql"
	$SUDO apt-get update >&2
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y postgresql >&2
fi

# The newest installed major version.
VER="$(ls /usr/lib/postgresql | sort -n | tail -1)"

# Debian's package normally creates the "main" cluster; a minimal image
# (policy-rc.d, no cluster) may not have one.
if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$VER main"; then
	log "creating cluster $VER/main"
	$SUDO pg_createcluster "$VER" main --port "$PORT" >&2
fi

if ! pg_lsclusters -h | awk -v v="$VER" '$1==v && $2=="main" {print $4}' | grep -qx online; then
	log "starting cluster $VER/main"
	# Without systemd (containers) pg_ctlcluster is the direct way.
	$SUDO pg_ctlcluster "$VER" main start >&2
fi

# Peer authentication over the Unix socket: run psql as the postgres OS user.
psql_postgres() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PORT" "$@"
	else
		sudo -u postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PORT" "$@"
	fi
}

# Wait for the server to accept connections (start returns once the
# postmaster is up, but be defensive on slow CI machines).
for _ in $(seq 1 30); do
	if psql_postgres -d postgres -c 'SELECT 1' >/dev/null 2>&1; then break; fi
	sleep 1
done

log "setting password and creating database $DB"
psql_postgres -d postgres -c "ALTER USER postgres PASSWORD '$PGPASSWORD_VALUE'" >&2
if [ "$(psql_postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]; then
	psql_postgres -d postgres -c "CREATE DATABASE $DB" >&2
fi

echo "export FOUREYES_TEST_POSTGRES=postgres://postgres:${PGPASSWORD_VALUE}@127.0.0.1:${PORT}/${DB}?sslmode=disable"
