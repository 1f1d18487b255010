#!/usr/bin/env bash
# tests/run.sh [--lint] [NEXTEST ARGS...] -- THE test command of Postdesk.
#
# 1. installs missing system packages + cargo-nextest (tests/harness/install-deps.sh);
# 2. starts a private mail system (Postfix + Dovecot, tests/harness/start-mail.sh)
#    and a private PostgreSQL (tests/harness/start-pg.sh) on free loopback
#    ports in a fresh temp dir, stopped and purged again on exit;
# 3. with --lint or $CI set: cargo fmt --check, cargo clippy -D warnings;
# 4. cargo build --all-targets;
# 5. cargo nextest run against SQLite (POSTDESK_TEST_DB=sqlite), then against
#    PostgreSQL (POSTDESK_TEST_DB=postgres, POSTDESK_TEST_PG_URL=...); both
#    always run, the exit status is non-zero if anything failed;
# 6. with --lint (CI) and no test filter: each fuzz target for
#    $POSTDESK_FUZZ_SECONDS (default 20) seconds (tests/harness/fuzz.sh).
# The OAuth2 tests (tests/oauth2.rs) start their own mail system per test
# (start-mail.sh with OAUTH2_INTROSPECTION_URL pointing at their fake OAuth2
# server, on free ports) and stop it themselves: nothing to start here.
# Extra arguments go to both nextest runs, e.g. `bash tests/run.sh imap::`.
# Environment seen by the tests: the MAILTEST_* variables of the mail env.sh
# (also reachable through POSTDESK_TEST_MAIL_ENV=<path of that env.sh>),
# DATABASE_URL (PostgreSQL run only), POSTDESK_TEST_DB, POSTDESK_TEST_PG_URL,
# RUST_BACKTRACE=1.
# POSTDESK_TEST_KEEP=1 keeps the temp dir (server logs, maildirs) after the run.
# shellcheck disable=SC2317  # functions invoked by the EXIT trap look unreachable
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
H=tests/harness

LINT=0
case ${CI:-} in "" | 0 | false) ;; *) LINT=1 ;; esac
NEXTEST_ARGS=()
for a in "$@"; do
  if [ "$a" = --lint ]; then LINT=1; else NEXTEST_ARGS+=("$a"); fi
done
export RUST_BACKTRACE=1
# Incremental caches double the size of target/ and buy nothing in a one-shot run.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
START=$SECONDS

say() { printf '\n==> %s\n' "$*" >&2; }

say "dependencies"
bash "$H/install-deps.sh"
# A full build needs a few GB; say so plainly instead of dying mid-link.
FREE_KB=$(df -Pk "$ROOT" | awk 'NR==2 {print $4}')
if [ "${FREE_KB:-0}" -lt 4194304 ]; then
  echo "run.sh: warning: only $((FREE_KB / 1024)) MB free on the disk of $ROOT; a full build needs about 4 GB" >&2
fi

# ---- private servers
T=$(mktemp -d "${TMPDIR:-/tmp}/postdesk-test.XXXXXX")
chmod 755 "$T"   # the postfix/dovecot/postgres users must traverse it
MAIL_STARTED=0 PG_STARTED=0
declare -A RESULT=()
ORDER=()
FAILED=0
summary() { # the last line of the output, printed by cleanup
  local s="" n
  for n in ${ORDER[@]+"${ORDER[@]}"}; do s+=" $n=${RESULT[$n]}"; done
  [ -n "$s" ] || s=" (no step ran)"
  if [ "$1" = 0 ]; then
    printf '\nrun.sh: SUCCESS:%s (%ss)\n' "$s" "$((SECONDS - START))"
  else
    printf '\nrun.sh: FAILURE (exit %s):%s (%ss)\n' "$1" "$s" "$((SECONDS - START))"
  fi
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$MAIL_STARTED" = 1 ]; then bash "$H/stop-mail.sh" "$T/mail" || true; fi
  if [ "$PG_STARTED" = 1 ]; then bash "$H/stop-pg.sh" "$T/pg" || true; fi
  if [ "${POSTDESK_TEST_KEEP:-0}" = 1 ]; then
    echo "run.sh: kept $T (servers stopped)" >&2
  else
    rm -rf "$T"
  fi
  summary "$rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# shellcheck source=tests/harness/free-port.sh
. "$H/free-port.sh"
say "starting mail + PostgreSQL servers in $T"
ports_lock
IMAP_PORT=$(pick_port 10143)
IMAPS_PORT=$(pick_port 10993)
LMTP_PORT=$(pick_port 10024)
SMTP_PORT=$(pick_port 10025)
SUBMISSION_PORT=$(pick_port 10587)
SUBMISSIONS_PORT=$(pick_port 10465)
PG_PORT=$(pick_port 15432)
MAIL_STARTED=1
IMAP_PORT=$IMAP_PORT IMAPS_PORT=$IMAPS_PORT LMTP_PORT=$LMTP_PORT SMTP_PORT=$SMTP_PORT \
  SUBMISSION_PORT=$SUBMISSION_PORT SUBMISSIONS_PORT=$SUBMISSIONS_PORT \
  run_unlocked bash "$H/start-mail.sh" "$T/mail" >/dev/null
PG_STARTED=1
PG_PORT=$PG_PORT run_unlocked bash "$H/start-pg.sh" "$T/pg" >/dev/null
ports_unlock

# shellcheck source=/dev/null
. "$T/mail/env.sh"
# shellcheck source=/dev/null
. "$T/pg/env.sh"
export POSTDESK_TEST_MAIL_ENV=$T/mail/env.sh
PG_URL=$DATABASE_URL
echo "run.sh: IMAP $MAILTEST_IMAP_PORT, SMTP $MAILTEST_SMTP_PORT, PostgreSQL $PG_URL" >&2

# step NAME CMD... -- run CMD, record PASS/FAIL, never abort
step() {
  local name=$1 rc=0
  shift
  say "$name: $*"
  "$@" || rc=$?
  ORDER+=("$name")
  if [ "$rc" = 0 ]; then RESULT[$name]=PASS; else RESULT[$name]="FAIL($rc)"; FAILED=1; fi
}

if [ "$LINT" = 1 ]; then
  step fmt cargo fmt --check
  step clippy cargo clippy --all-targets -- -D warnings
fi
step build cargo build --all-targets
if [ "${RESULT[build]}" != PASS ]; then exit 1; fi
# The SQLite run must not see the PostgreSQL DATABASE_URL (a config/CLI layer
# reading DATABASE_URL would silently switch it to PostgreSQL).
step sqlite env -u DATABASE_URL POSTDESK_TEST_DB=sqlite \
  cargo nextest run --no-fail-fast ${NEXTEST_ARGS[@]+"${NEXTEST_ARGS[@]}"}
step postgres env POSTDESK_TEST_DB=postgres POSTDESK_TEST_PG_URL="$PG_URL" DATABASE_URL="$PG_URL" \
  cargo nextest run --no-fail-fast ${NEXTEST_ARGS[@]+"${NEXTEST_ARGS[@]}"}
# A short fuzzing round in CI (longer runs: tests/harness/fuzz.sh SECONDS).
if [ "$LINT" = 1 ] && [ ${#NEXTEST_ARGS[@]} = 0 ]; then
  step fuzz bash "$H/fuzz.sh" "${POSTDESK_FUZZ_SECONDS:-20}"
fi

exit "$FAILED"
