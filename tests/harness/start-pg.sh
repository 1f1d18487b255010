#!/usr/bin/env bash
# start-pg.sh [DIR] -- Postdesk test harness: throw-away PostgreSQL cluster on
# 127.0.0.1:$PG_PORT (default 15432) for the Postgres run of the test suite
# (tests/run.sh).  Data + unix socket + log under DIR.  Nothing of Debian's
# default cluster (/var/lib/postgresql/15/main, port 5432) is touched.
# Needs: postgresql (15 on Debian 12; tests/harness/install-deps.sh).  As root,
#        initdb/postgres refuse to run as root, so they run as the "postgres"
#        user via runuser (every parent dir of DIR must be traversable by it).
# Writes DIR/env.sh with DATABASE_URL (trust auth, user/db "helpdesk").
# Stop with stop-pg.sh DIR [--purge].
set -euo pipefail
DIR=${1:-$(mktemp -d /tmp/pgtest.XXXXXX)}
mkdir -p "$DIR"; DIR=$(cd "$DIR" && pwd)
: "${PG_PORT:=15432}" "${PG_USER:=helpdesk}" "${PG_DB:=helpdesk}"
BIN=${PG_BIN:-$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1)}
t0=$EPOCHREALTIME
el() { awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.3f", b-a}'; }

if [ "$(id -u)" = 0 ]; then
  AS=(runuser -u postgres --)
  chown postgres:postgres "$DIR"
  # PITFALL: every parent dir must be traversable by "postgres" (mktemp -d
  # under /tmp is fine; a 0700 dir of root's on the path is not).
else
  AS=()
fi
if [ ! -s "$DIR/data/PG_VERSION" ]; then
  # --no-sync: skip fsync of the new cluster (test instance) -> ~0.3 s faster
  "${AS[@]}" "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust --encoding=UTF8 \
      --locale=C.UTF-8 --no-sync --no-instructions >"$DIR/initdb.log" 2>&1
  cat >> "$DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$DIR'
max_connections = 200
# test instance: durability off, speed on
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 128MB
log_min_messages = warning
CONF
  echo "initdb done in $(el)s" >&2
fi
# PITFALL: the postmaster inherits every fd of ours except 0/1/2 (a CI
# runner's output pipe, a jobserver...): close them for it, or a caller
# waiting for EOF on such a pipe hangs until the cluster is stopped.
(
  for f in "/proc/$BASHPID/fd"/*; do
    fd=${f##*/}
    if [ "$fd" -gt 2 ] 2>/dev/null; then exec {fd}>&- 2>/dev/null || true; fi
  done
  exec "${AS[@]}" "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/postgres.log" -w -t 30 start
) </dev/null >/dev/null
echo "postgres up in $(el)s" >&2
"${AS[@]}" "$BIN/psql" -h "$DIR" -p "$PG_PORT" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1 <<SQL >/dev/null
SELECT 'CREATE ROLE $PG_USER LOGIN SUPERUSER' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname='$PG_USER') \gexec
SELECT 'CREATE DATABASE $PG_DB OWNER $PG_USER' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname='$PG_DB') \gexec
SQL
cat > "$DIR/env.sh" <<ENV
export PGTEST_DIR=$DIR
export DATABASE_URL=postgres://$PG_USER@127.0.0.1:$PG_PORT/$PG_DB
ENV
echo "ready in $(el)s: source $DIR/env.sh" >&2
echo "$DIR"
