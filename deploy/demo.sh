#!/usr/bin/env bash
# deploy/demo.sh -- end-to-end demo of Postdesk on a fresh Debian 12 machine
# (as root): installs the system packages, builds postdesk, starts a private
# mail system (Postfix + Dovecot on free loopback ports, in a temp dir),
# configures postdesk with a SQLite database, imports the demo client, starts
# the daemon, mails fixtures/demo/request.eml from alice@customer.test to
# support@example.test, shows the ticket that was opened and the
# acknowledgement that arrived in Alice's mailbox.
#
#   DEMO_PROFILE=debug   build/run the debug binary (default: release)
#   DEMO_KEEP=1          keep the temp dir and leave the mail servers running
#                        (the daemon is always stopped)
#   DEMO_BIN=PATH        use this postdesk binary instead of building one
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
H=$ROOT/tests/harness
PROFILE=${DEMO_PROFILE:-release}
KEEP=${DEMO_KEEP:-0}

say() { printf '\n==> %s\n' "$*" >&2; }
die() { printf '\ndemo: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (the private Postfix instance needs root)"
case $PROFILE in release | debug) ;; *) die "DEMO_PROFILE must be release or debug" ;; esac

say "installing missing system packages"
bash "$H/install-deps.sh" --no-nextest

if [ -n "${DEMO_BIN:-}" ]; then
  BIN=$DEMO_BIN
  [ -x "$BIN" ] || die "DEMO_BIN=$BIN is not an executable"
else
  say "building postdesk ($PROFILE)"
  if [ "$PROFILE" = release ]; then cargo build --release --bin postdesk; else cargo build --bin postdesk; fi
  TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  BIN=${TARGET_DIR:-$ROOT/target}/$PROFILE/postdesk
  [ -x "$BIN" ] || die "binary $BIN not found after the build"
fi

# ---- private mail servers
DIR=$(mktemp -d "${TMPDIR:-/tmp}/postdesk-demo.XXXXXX")
chmod 755 "$DIR"   # the postfix/dovecot users must traverse it
MAIL=$DIR/mail
PD_PID=
pd_alive() { [ -n "$PD_PID" ] && [ "$(awk '{print $3}' "/proc/$PD_PID/stat" 2>/dev/null || echo Z)" != Z ]; }
cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  if [ -n "$PD_PID" ]; then
    if pd_alive; then
      kill -TERM "$PD_PID" 2>/dev/null || true
      for ((i = 0; i < 100; i++)); do pd_alive || break; sleep 0.1; done
      if pd_alive; then echo "demo: postdesk did not stop within 10 s, killing it" >&2; kill -KILL "$PD_PID" 2>/dev/null || true; fi
    fi
    wait "$PD_PID" 2>/dev/null || true
  fi
  if [ "$rc" != 0 ] && [ -f "$DIR/postdesk.log" ]; then
    echo "---- last lines of $DIR/postdesk.log" >&2
    tail -n 40 "$DIR/postdesk.log" >&2 || true
  fi
  if [ "$KEEP" = 1 ]; then
    cat >&2 <<EOF

demo: kept $DIR, mail servers still running (source $MAIL/env.sh).
      restart the daemon: $BIN --config $DIR/postdesk.toml run
      stop everything:    bash $H/stop-mail.sh $MAIL --purge; rm -rf $DIR
EOF
  else
    bash "$H/stop-mail.sh" "$MAIL" 2>/dev/null || true
    rm -rf "$DIR"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "starting the mail servers in $DIR"
# shellcheck source=tests/harness/free-port.sh
. "$H/free-port.sh"
ports_lock
IMAP_PORT=$(pick_port 10143)
IMAPS_PORT=$(pick_port 10993)
LMTP_PORT=$(pick_port 10024)
SMTP_PORT=$(pick_port 10025)
SUBMISSION_PORT=$(pick_port 10587)
SUBMISSIONS_PORT=$(pick_port 10465)
IMAP_PORT=$IMAP_PORT IMAPS_PORT=$IMAPS_PORT LMTP_PORT=$LMTP_PORT SMTP_PORT=$SMTP_PORT \
  SUBMISSION_PORT=$SUBMISSION_PORT SUBMISSIONS_PORT=$SUBMISSIONS_PORT \
  run_unlocked bash "$H/start-mail.sh" "$MAIL" >/dev/null
ports_unlock
# shellcheck source=/dev/null
. "$MAIL/env.sh"

# ---- configuration
CFG=$DIR/postdesk.toml
mkdir -p "$DIR/storage"
: > "$DIR/postdesk.db"   # an empty file is a valid empty SQLite database
cat > "$CFG" <<EOF
[database]
url = "sqlite://$DIR/postdesk.db"

[storage]
dir = "$DIR/storage"

[[mailbox]]
name = "support"
address = "support@example.test"
imap_host = "127.0.0.1"
imap_port = $MAILTEST_IMAP_PORT
imap_tls = "none"
username = "support@example.test"
password = "$MAILTEST_PASSWORD"
folder = "INBOX"
processed_folder = "Processed"
default_priority = "medium"

[smtp]
host = "127.0.0.1"
port = $MAILTEST_SMTP_PORT
tls = "none"
from = "Example IT Support <support@example.test>"

[tickets]
prefix = "T-"
unknown_senders = "create"

[web]
listen = "127.0.0.1:0"
base_url = "http://127.0.0.1:8080"

[[links.keys]]
id = "demo"
secret = "demo-secret-please-change-0123456789abcdef"

[branding]
company_name = "Example IT"

[[staff]]
email = "tech@msp.test"
name = "Tess Tech"
EOF
echo "demo: config written to $CFG" >&2

pd() { "$BIN" --config "$CFG" "$@"; }

say "postdesk migrate"
pd migrate
say "postdesk import fixtures/demo/clients.json"
pd import "$ROOT/fixtures/demo/clients.json"

say "starting the daemon (log: $DIR/postdesk.log)"
# fds detached: the daemon must not hold our stdout/stderr
RUST_LOG=${RUST_LOG:-info} "$BIN" --config "$CFG" run </dev/null >>"$DIR/postdesk.log" 2>&1 &
PD_PID=$!

# smtp_send FROM TO FILE -- minimal SMTP client over bash /dev/tcp (fallback
# when Postfix's sendmail/postdrop path is not usable)
smtp_send() {
  local from=$1 to=$2 file=$3 line code
  exec {S}<>"/dev/tcp/127.0.0.1/$MAILTEST_SMTP_PORT" || return 1
  expect() { # read a (multi-line) reply, fail unless its code is $1
    while IFS= read -r -t 30 line <&"$S"; do
      line=${line%$'\r'}
      [ "${line:3:1}" = - ] && continue
      code=${line:0:3}
      [ "$code" = "$1" ] && return 0
      echo "demo: SMTP: expected $1, got: $line" >&2
      return 1
    done
    echo "demo: SMTP: connection closed/timed out" >&2
    return 1
  }
  cmd() { printf '%s\r\n' "$1" >&"$S"; expect "$2"; }
  expect 220 &&
    cmd "EHLO demo.customer.test" 250 &&
    cmd "MAIL FROM:<$from>" 250 &&
    cmd "RCPT TO:<$to>" 250 &&
    cmd "DATA" 354 &&
    { sed -e 's/\r$//' -e 's/^\./../' -e 's/$/\r/' "$file" >&"$S"; printf '.\r\n' >&"$S"; expect 250; } &&
    cmd "QUIT" 221
  local rc=$?
  exec {S}>&-
  return "$rc"
}

say "mailing fixtures/demo/request.eml from alice@customer.test to support@example.test"
SENDMAIL=$(command -v sendmail || echo /usr/sbin/sendmail)
if ! "$SENDMAIL" -C "$MAILTEST_POSTFIX_CONF" -f alice@customer.test support@example.test \
     < "$ROOT/fixtures/demo/request.eml"; then
  echo "demo: sendmail failed, falling back to SMTP on port $MAILTEST_SMTP_PORT" >&2
  smtp_send alice@customer.test support@example.test "$ROOT/fixtures/demo/request.eml" ||
    die "could not submit the demo mail"
fi

# ---- wait for the ticket
say "waiting for the ticket (30 s)"
deadline=$((SECONDS + 30))
list=
while :; do
  pd_alive || die "the postdesk daemon exited (see the log below)"
  list=$(pd tickets list --json 2>>"$DIR/cli.log" || true)
  compact=$(printf '%s' "$list" | tr -d ' \t\r\n')
  if [ -n "$compact" ] && [ "$compact" != "[]" ]; then break; fi
  [ "$SECONDS" -lt "$deadline" ] || die "timeout: no ticket after 30 s (tickets list: ${list:-<no output>})"
  sleep 0.2
done
number=$(printf '%s' "$list" | tr -d '\n' |
  grep -oE '"number"[[:space:]]*:[[:space:]]*("[^"]*"|[0-9]+)' | head -n 1 |
  sed -E 's/^"number"[[:space:]]*:[[:space:]]*//; s/"//g' || true)
[ -n "$number" ] || die "no \"number\" field in: $list"
say "ticket $number (postdesk tickets show $number --json)"
pd tickets show "$number" --json

# ---- wait for the acknowledgement in Alice's mailbox
say "waiting for the acknowledgement in alice@customer.test's INBOX (30 s)"
MD=$MAILTEST_DIR/mail/customer.test/alice/Maildir
deadline=$((SECONDS + 30))
ack=
while :; do
  ack=$(find "$MD/new" "$MD/cur" -type f 2>/dev/null | head -n 1 || true)
  [ -z "$ack" ] || break
  [ "$SECONDS" -lt "$deadline" ] || die "timeout: no acknowledgement in $MD after 30 s"
  sleep 0.2
done
say "acknowledgement received by alice@customer.test ($ack)"
cat "$ack"

say "demo finished successfully"
