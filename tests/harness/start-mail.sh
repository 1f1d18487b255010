#!/usr/bin/env bash
# start-mail.sh [DIR] -- Postdesk test harness: start a throw-away mail system
# on loopback for the integration tests and the demo (tests/run.sh,
# deploy/demo.sh):
#   Dovecot 2.3  IMAP  127.0.0.1:$IMAP_PORT   (plain, IDLE, STARTTLS)
#                IMAPS 127.0.0.1:$IMAPS_PORT  (implicit TLS)
#                LMTP  127.0.0.1:$LMTP_PORT   (delivery, used by Postfix; runs Sieve)
#   Postfix 3.7  SMTP  127.0.0.1:$SMTP_PORT   (MX-like: no auth, STARTTLS optional,
#                                               accepts mail for the test domains)
#                SUBM  127.0.0.1:$SUBMISSION_PORT  (STARTTLS required + AUTH)
#                SUBMS 127.0.0.1:$SUBMISSIONS_PORT (implicit TLS + AUTH)
# All state (config, maildirs, queue, logs, sockets, TLS) is under DIR
# (default: a new mktemp dir).  Nothing in /etc is modified.
# Needs the Debian packages of tests/harness/install-deps.sh (run as root for
# Postfix; without root only Dovecot is started).
#
# Users: EVERY address in $MAIL_DOMAINS exists; IMAP/SMTP-AUTH password is
# always $MAIL_PASSWORD (default "test-pw").  Mail to any other domain lands in
# catchall@sink.test, except dead.test: accepted by Postfix, then refused by
# Dovecot LMTP, so Postfix sends a real DSN bounce back to the sender.
# support+token@example.test is delivered to support@example.test.
# Sieve: DIR/mail/<domain>/<localpart>/.dovecot.sieve is the user's active
# script (vacation replies are sent through the private Postfix).
# OAuth2: with OAUTH2_INTROSPECTION_URL=http://127.0.0.1:PORT/path set, IMAP
# and the SMTP submission ports also take XOAUTH2/OAUTHBEARER, and Dovecot
# asks that URL whether a token is valid (tests/support/fake_oauth.rs starts
# such an endpoint, then its own mail system with this script).
# Writes DIR/env.sh for tests to source.  Stop with stop-mail.sh DIR [--purge].
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TPL=${MAIL_TEMPLATES:-$HERE/templates}
DIR=${1:-$(mktemp -d /tmp/mailtest.XXXXXX)}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
chmod 755 "$DIR"   # mkdtemp makes 0700; postfix and dovecot users must traverse it

: "${IMAP_PORT:=10143}" "${IMAPS_PORT:=10993}" "${LMTP_PORT:=10024}"
: "${SMTP_PORT:=10025}" "${SUBMISSION_PORT:=10587}" "${SUBMISSIONS_PORT:=10465}"
: "${MAIL_DOMAINS:=example.test customer.test msp.test sink.test}"
: "${MAIL_PASSWORD:=test-pw}"
: "${WITH_POSTFIX:=1}"     # 0: Dovecot only (IMAP + LMTP)

t0=$EPOCHREALTIME
log() { awk -v a="$t0" -v b="$EPOCHREALTIME" -v m="$*" 'BEGIN{printf "[start-mail %6.3fs] %s\n", b-a, m}' >&2; }

mkdir -p "$DIR"/{run/dovecot,state/dovecot,state/postfix,log,mail,tls,postfix,spool/postfix}
for d in $MAIL_DOMAINS; do mkdir -p "$DIR/mail/$d"; done

# ---- who owns what
if [ "$(id -u)" = 0 ]; then
  MAIL_UID=$(id -u mail) MAIL_GID=$(id -g mail)   # Debian's "mail" (8:8)
  INTERNAL_USER=dovecot LOGIN_USER=dovenull
  chown -R mail:mail "$DIR/mail"
  chown postfix "$DIR/state/postfix"
  # Tests run as root and may create DIR/mail/<domain>/<user>/.dovecot.sieve
  # *before* Dovecot has created that home directory: the directory would then
  # be root's 0755 and Dovecot (uid "mail") could neither create ~/Maildir in
  # it nor compile the script.  Default ACLs make everything created below
  # DIR/mail readable+writable by the mail uid, whoever creates it.
  if ! { command -v setfacl >/dev/null 2>&1 &&
         find "$DIR/mail" -type d -exec setfacl -m u:mail:rwx,g:mail:rwx,d:u:mail:rwx,d:g:mail:rwx {} + 2>/dev/null; }; then
    echo "start-mail: WARNING: setfacl failed (install 'acl'); tests writing" \
         ".dovecot.sieve must chown the home dir to $MAIL_UID:$MAIL_GID themselves" >&2
  fi
else
  # rootless Dovecot: every process runs as the invoking user (Postfix needs root)
  MAIL_UID=$(id -u) MAIL_GID=$(id -g)
  INTERNAL_USER=$(id -un) LOGIN_USER=$(id -un)
  WITH_POSTFIX=0
fi

# ---- TLS: throw-away CA + leaf (a self-signed *CA* cert used as the server
# cert is rejected by rustls/webpki with CaUsedAsEndEntity, so make two).
if [ ! -s "$DIR/tls/server.pem" ]; then
  (
    cd "$DIR/tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout ca.key -out ca.pem -days 3650 -subj "/CN=postdesk mailtest CA" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,DNS:mail.example.test,IP:127.0.0.1\n' > leaf.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
      -out server.pem -days 3650 -extfile leaf.ext 2>/dev/null
    # RFC 7919 group: instant (openssl dhparam 2048 would take seconds)
    openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe2048 -out dh.pem 2>/dev/null
    chmod 644 server.pem ca.pem dh.pem; chmod 600 server.key ca.key
  )
  log "TLS material generated"
fi

# ---- users: every local part of every test domain
doms_re=$(echo "$MAIL_DOMAINS" | tr ' ' '\n' | sed '/^$/d; s/\./\\./g' | paste -sd'|')
# Postfix: any recipient in a test domain is a valid virtual mailbox
printf '/@(%s)$/ OK\n' "$doms_re" > "$DIR/postfix/vmailbox.regexp"
# Dovecot: passdb username_filter (wildcards), e.g. "*@example.test *@customer.test"
username_filter=$(echo "$MAIL_DOMAINS" | tr ' ' '\n' | sed '/^$/d; s/^/*@/' | paste -sd' ')
: > "$DIR/no-users"; chmod 644 "$DIR/no-users"   # second passdb: everyone else is unknown
# anything else (except dead.test) is rewritten to the catch-all mailbox
printf 'if !/@(%s|dead\\.test)$/\n/.*/ catchall@sink.test\nendif\n' "$doms_re" > "$DIR/postfix/catchall.regexp"
# dead.test is accepted, then refused by Dovecot LMTP (no such user): Postfix sends a real DSN
printf 'dead.test lmtp:inet:127.0.0.1:%s\n' "$LMTP_PORT" > "$DIR/postfix/transport"

render() {
  sed -e "s|@DIR@|$DIR|g" -e "s|@IMAP_PORT@|$IMAP_PORT|g" -e "s|@IMAPS_PORT@|$IMAPS_PORT|g" \
      -e "s|@LMTP_PORT@|$LMTP_PORT|g" -e "s|@SMTP_PORT@|$SMTP_PORT|g" \
      -e "s|@SUBMISSION_PORT@|$SUBMISSION_PORT|g" -e "s|@SUBMISSIONS_PORT@|$SUBMISSIONS_PORT|g" \
      -e "s|@DOMAINS@|$MAIL_DOMAINS|g" -e "s|@MAIL_UID@|$MAIL_UID|g" -e "s|@MAIL_GID@|$MAIL_GID|g" \
      -e "s|@PASSWORD@|$MAIL_PASSWORD|g" -e "s|@USERNAME_FILTER@|$username_filter|g" \
      -e "s|@INTERNAL_USER@|$INTERNAL_USER|g" -e "s|@LOGIN_USER@|$LOGIN_USER|g" "$1" > "$2"
}
render "$TPL/dovecot.conf.in" "$DIR/dovecot.conf"
# OAuth2 (optional): XOAUTH2/OAUTHBEARER checked by an oauth2 passdb that
# POSTs every token to $OAUTH2_INTROSPECTION_URL (RFC 7662 introspection;
# the answer's "active" must be true and its "username" the login name).
# Postfix's SMTP AUTH asks the same Dovecot auth, so the submission ports
# offer XOAUTH2 too.  Without the variable, nothing OAuth is configured.
if [ -n "${OAUTH2_INTROSPECTION_URL:-}" ]; then
  cat > "$DIR/dovecot-oauth2.conf" <<EOF_OAUTH
auth_mechanisms = plain login xoauth2 oauthbearer
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $DIR/dovecot-oauth2.conf.ext
}
EOF_OAUTH
  cat > "$DIR/dovecot-oauth2.conf.ext" <<EOF_OAUTH
introspection_mode = post
introspection_url = $OAUTH2_INTROSPECTION_URL
username_attribute = username
active_attribute = active
active_value = true
force_introspection = yes
EOF_OAUTH
  chmod 644 "$DIR/dovecot-oauth2.conf" "$DIR/dovecot-oauth2.conf.ext"
else
  rm -f "$DIR/dovecot-oauth2.conf" "$DIR/dovecot-oauth2.conf.ext"
fi
render "$TPL/main.cf.in"      "$DIR/postfix/main.cf"
render "$TPL/master.cf.in"    "$DIR/postfix/master.cf"
# PITFALL: postfix(1) sleeps in 300 ms steps until main.cf is ~2 s old
# ("just edited" guard): back-date the rendered files, saves ~2 s per start.
touch -d '-10 seconds' "$DIR/postfix/main.cf" "$DIR/postfix/master.cf"

# wait_port PORT [SECONDS] -- until something accepts on 127.0.0.1:PORT
wait_port() {
  local port=$1 deadline=$(( $(date +%s) + ${2:-20} ))
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "port $port did not open" >&2; return 1; }
    sleep 0.05
  done
}

# detached CMD... -- run CMD with stdin/stdout/stderr detached and every other
# inherited fd closed.
# PITFALL: daemons inherit our stdout/stderr; if the caller captures them
# (DIR=$(start-mail.sh), a pipe, cargo test) it would hang until the daemons
# exit -> always detach fds.  Dovecot also keeps any other inherited fd (a CI
# runner's pipe, a make/cargo jobserver), so close those as well.
detached() {
  (
    for f in "/proc/$BASHPID/fd"/*; do
      fd=${f##*/}
      if [ "$fd" -gt 2 ] 2>/dev/null; then exec {fd}>&- 2>/dev/null || true; fi
    done
    exec "$@"
  ) </dev/null >>"$DIR/log/$1-start.log" 2>&1
}

# ---- Dovecot
# daemonizes; pid in run/dovecot/master.pid
detached dovecot -c "$DIR/dovecot.conf" ||
  { echo "start-mail: dovecot failed to start:" >&2; tail -n 20 "$DIR/log/dovecot-start.log" "$DIR/log/dovecot.log" >&2; exit 1; }
wait_port "$IMAP_PORT"; wait_port "$IMAPS_PORT"; wait_port "$LMTP_PORT"
log "dovecot up (pid $(cat "$DIR/run/dovecot/master.pid"))"

# ---- Postfix
if [ "$WITH_POSTFIX" = 1 ]; then
  # Pre-create the queue tree that `postfix start` would build through its
  # post-install shell script (~40 postconf forks, ~2 s) and tell postfix-script
  # to skip that check with the documented "quick-start" flag file.
  Q=$DIR/spool/postfix
  chown root:root "$Q"; chmod 755 "$Q"
  for d in active bounce corrupt defer deferred flush hold incoming private saved trace; do
    install -d -o postfix -g root -m 700 "$Q/$d"; done
  install -d -o postfix -g postdrop -m 730 "$Q/maildrop"
  install -d -o postfix -g postdrop -m 710 "$Q/public"
  install -d -o root -g root -m 755 "$Q/pid"
  [ "${POSTFIX_FULL_CHECK:-0}" = 1 ] || touch "$Q/quick-start"
  detached postfix -c "$DIR/postfix" start ||
    { echo "start-mail: postfix failed to start:" >&2; tail -n 20 "$DIR/log/postfix-start.log" "$DIR/log/postfix.log" >&2; exit 1; }
  wait_port "$SMTP_PORT"; wait_port "$SUBMISSION_PORT"; wait_port "$SUBMISSIONS_PORT"
  log "postfix up (pid $(tr -d ' ' < "$DIR/spool/postfix/pid/master.pid"))"
fi

cat > "$DIR/env.sh" <<EOF
# source me: connection facts of the Postdesk test mail system in $DIR
# (written by tests/harness/start-mail.sh; stop with tests/harness/stop-mail.sh)
#
# Accounts: EVERY address in the test domains ($MAIL_DOMAINS)
# exists; IMAP login = the full address, password = \$MAILTEST_PASSWORD.  Use a
# unique address per test (e.g. support-<random>@example.test) to run in parallel.
# Mail for other domains goes to catchall@sink.test; mail for *@dead.test is
# bounced with a real DSN; support+tag@example.test is delivered to support@.
# Maildir of user@domain: \$MAILTEST_DIR/mail/<domain>/<user>/Maildir/{new,cur}
#
# Sieve (vacation auto-replies etc.): write the script to
#   \$MAILTEST_DIR/mail/<domain>/<user>/.dovecot.sieve
# before the mail arrives, e.g.
#   require ["vacation"]; vacation :days 1 :subject "Out of office" "I am away.";
# The file must be readable by uid \$MAILTEST_MAIL_UID (a normal 0644 file is;
# default ACLs on \$MAILTEST_DIR/mail make directories created by root writable
# for it too).  Replies go out through the private Postfix with MAIL FROM:<>,
# only to mails that name the user in To/Cc and carry no Auto-Submitted /
# Precedence: bulk|list|junk / List-Id header (RFC 3834), once per sender
# per period (":days 0" or ":seconds N" with require "vacation-seconds" allowed).
export MAILTEST_DIR=$DIR
export MAILTEST_IMAP_PORT=$IMAP_PORT MAILTEST_IMAPS_PORT=$IMAPS_PORT MAILTEST_LMTP_PORT=$LMTP_PORT
export MAILTEST_SMTP_PORT=$SMTP_PORT MAILTEST_SUBMISSION_PORT=$SUBMISSION_PORT MAILTEST_SUBMISSIONS_PORT=$SUBMISSIONS_PORT
export MAILTEST_CA=$DIR/tls/ca.pem             # trust anchor for IMAPS/STARTTLS (server cert: localhost, 127.0.0.1)
export MAILTEST_PASSWORD=$MAIL_PASSWORD
export MAILTEST_DOMAINS="$MAIL_DOMAINS"
export MAILTEST_MAIL_UID=$MAIL_UID MAILTEST_MAIL_GID=$MAIL_GID
export MAILTEST_DOVECOT_CONF=$DIR/dovecot.conf   # doveadm -c \$MAILTEST_DOVECOT_CONF ...
export MAILTEST_POSTFIX_CONF=$DIR/postfix        # postfix -c ..., postqueue -c ..., sendmail -C ...
EOF
chmod 644 "$DIR/env.sh"
log "ready: $DIR (source $DIR/env.sh)"
echo "$DIR"
