#!/usr/bin/env bash
# stop-mail.sh DIR [--purge] -- Postdesk test harness: stop the Postfix +
# Dovecot started by tests/harness/start-mail.sh DIR and wait until their
# master processes are gone; with --purge also delete DIR.  Only the pids
# recorded in DIR are signalled (never anything by name).
set -uo pipefail
DIR=${1:?usage: stop-mail.sh DIR [--purge]}
t0=$EPOCHREALTIME

# PITFALL: the daemons are orphans re-parented to PID 1, and PID 1 in a
# container may reap them only every few seconds; a zombie still answers
# kill -0, so "alive" = exists and is not in state Z.
alive() { local s; s=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1; [ -n "$s" ] && [ "$s" != Z ]; }
wait_gone() { # pid timeout_s
  local i=0; while alive "$1"; do i=$((i+1)); [ $i -gt $(( $2 * 50 )) ] && return 1; sleep 0.02; done; }

# Postfix: SIGTERM to master is exactly what `postfix stop` does, minus its
# "sleep 1" polling loop (saves ~1 s).
pf_pid=$(tr -d ' ' 2>/dev/null < "$DIR/spool/postfix/pid/master.pid" || true)
if [ -n "$pf_pid" ] && alive "$pf_pid"; then
  kill -TERM "$pf_pid"
  wait_gone "$pf_pid" 10 || { echo "postfix master $pf_pid still alive, KILL" >&2; kill -KILL "$pf_pid"; }
fi
# Dovecot: SIGTERM to master == `doveadm -c DIR/dovecot.conf stop`
dc_pid=$(cat "$DIR/run/dovecot/master.pid" 2>/dev/null || true)
if [ -n "$dc_pid" ] && alive "$dc_pid"; then
  kill -TERM "$dc_pid"
  wait_gone "$dc_pid" 10 || { echo "dovecot master $dc_pid still alive, KILL" >&2; kill -KILL "$dc_pid"; }
fi
awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "[stop-mail] stopped in %.3fs\n", b-a}' >&2
if [ "${2:-}" = --purge ]; then rm -rf "$DIR"; fi
exit 0
