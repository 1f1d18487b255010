#!/usr/bin/env bash
# stop-pg.sh DIR [--purge] -- Postdesk test harness: fast shutdown of the
# PostgreSQL cluster started by tests/harness/start-pg.sh DIR; with --purge
# also delete DIR.
set -uo pipefail
DIR=${1:?usage: stop-pg.sh DIR [--purge]}
BIN=${PG_BIN:-$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1)}
t0=$EPOCHREALTIME
if [ -f "$DIR/data/postmaster.pid" ]; then
  if [ "$(id -u)" = 0 ]; then AS=(runuser -u postgres --); else AS=(); fi
  "${AS[@]}" "$BIN/pg_ctl" -D "$DIR/data" -m fast -w -t 30 stop >/dev/null
fi
awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "[stop-pg] stopped in %.3fs\n", b-a}' >&2
if [ "${2:-}" = --purge ]; then rm -rf "$DIR"; fi
exit 0
