# free-port.sh -- Postdesk test harness: helpers to choose free loopback ports
# for the private mail/database servers.  Source it (tests/run.sh,
# deploy/demo.sh):
#   . tests/harness/free-port.sh
#   ports_lock                      # optional: serialise concurrent pickers
#   imap=$(pick_port 10143)         # 10143, else 10243, 10343, ... (first free)
#   run_unlocked bash start-mail.sh DIR   # start the servers on the chosen ports
#   ports_unlock
# "Free" = nothing accepts a TCP connection on 127.0.0.1:PORT (bash /dev/tcp).
# The default ports of the harness (10143 10993 10024 10025 10587 10465 15432)
# all differ modulo 100, so stepping by 100 never makes two of them collide.
# shellcheck shell=bash

# port_in_use PORT -- true if something listens on 127.0.0.1:PORT
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# pick_port DEFAULT [STEP] -- print DEFAULT, or the first of DEFAULT+STEP,
# DEFAULT+2*STEP, ... (STEP default 100) that is free; fails after 100 tries.
pick_port() {
  local port=$1 step=${2:-100} i
  for ((i = 0; i < 100; i++)); do
    if [ "$port" -gt 65535 ]; then break; fi
    if ! port_in_use "$port"; then
      echo "$port"
      return 0
    fi
    port=$((port + step))
  done
  echo "pick_port: no free port found from $1 in steps of $step" >&2
  return 1
}

# ports_lock / ports_unlock -- hold an exclusive lock between picking ports
# and the moment the servers listen on them, so that two harness runs started
# at the same time do not choose the same ports.  No-op without flock(1).
ports_lock() {
  command -v flock >/dev/null 2>&1 || return 0
  { exec {_POSTDESK_PORTS_LOCK_FD}>>"${TMPDIR:-/tmp}/postdesk-harness-ports.lock"; } 2>/dev/null || return 0
  flock -w 120 "$_POSTDESK_PORTS_LOCK_FD" || echo "ports_lock: could not get the lock, going on" >&2
}
ports_unlock() {
  if [ -n "${_POSTDESK_PORTS_LOCK_FD:-}" ]; then
    exec {_POSTDESK_PORTS_LOCK_FD}>&-
    unset _POSTDESK_PORTS_LOCK_FD
  fi
}
# run_unlocked CMD... -- run CMD without the lock fd: daemons started while
# the lock is held must not inherit it (they would hold it until they exit).
run_unlocked() {
  if [ -n "${_POSTDESK_PORTS_LOCK_FD:-}" ]; then
    "$@" {_POSTDESK_PORTS_LOCK_FD}>&-
  else
    "$@"
  fi
}
