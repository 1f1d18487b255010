#!/usr/bin/env bash
# install-deps.sh [--no-nextest] -- Postdesk test harness: idempotently install
# what tests/run.sh and deploy/demo.sh need on Debian 12:
#   - Debian packages (only those missing; `apt-get update` only if something
#     is missing): Dovecot IMAP/LMTP/Sieve, Postfix, PostgreSQL, OpenSSL,
#     CA certificates, acl (setfacl, see start-mail.sh);
#   - cargo-nextest (`cargo install --locked`) unless `cargo nextest` works
#     or --no-nextest is given;
#   - for the browser tests: Debian's Chromium, Node.js and npm, and the npm
#     packages of tests/browser (`npm ci` from its package-lock.json);
#   - python3-dkim: an independent DKIM verifier for the signing test.
# Installing Debian's postfix/dovecot/postgresql packages may start the
# system-wide daemons (ports 25, 143/993, 5432).  The harness never uses them
# (its private instances use other ports), so daemons that this install
# started are stopped again right away.  Needs root (or sudo) to install.
set -euo pipefail

PKGS=(dovecot-imapd dovecot-lmtpd dovecot-sieve postfix openssl postgresql ca-certificates acl
  poppler-utils chromium fonts-dejavu-core python3-dkim)
# Node.js and npm: Debian's, unless the machine has its own already.
command -v npm >/dev/null 2>&1 || PKGS+=(nodejs npm)
WITH_NEXTEST=1
for a in "$@"; do
  case $a in
    --no-nextest) WITH_NEXTEST=0 ;;
    *) echo "usage: install-deps.sh [--no-nextest]" >&2; exit 2 ;;
  esac
done

installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }

# is the system-wide daemon running?  (pid files; works with and without systemd)
pid_alive() { local p; p=$(tr -d ' \n' 2>/dev/null < "$1") && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
sys_running() {
  local f
  case $1 in
    postfix) pid_alive /var/spool/postfix/pid/master.pid ;;
    dovecot) pid_alive /run/dovecot/master.pid ;;
    postgresql)
      for f in /run/postgresql/*.pid; do
        if [ -e "$f" ] && pid_alive "$f"; then return 0; fi
      done
      return 1 ;;
  esac
}

missing=()
for p in "${PKGS[@]}"; do installed "$p" || missing+=("$p"); done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-deps: need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
    SUDO=(sudo)
  fi
  declare -A was_running=()
  for s in postfix dovecot postgresql; do
    if sys_running "$s"; then was_running[$s]=1; else was_running[$s]=0; fi
  done
  # no interactive "General type of mail configuration" question
  echo "postfix postfix/main_mailer_type select No configuration" | "${SUDO[@]}" debconf-set-selections
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  # stop the system-wide daemons the install started (errors are irrelevant:
  # e.g. no init system in a container, or nothing was started)
  for s in postfix dovecot postgresql; do
    if [ "${was_running[$s]}" = 0 ] && sys_running "$s"; then
      echo "install-deps: stopping the system-wide $s started by the install" >&2
      "${SUDO[@]}" service "$s" stop >/dev/null 2>&1 || true
      if [ "$s" = postgresql ] && sys_running postgresql && command -v pg_lsclusters >/dev/null 2>&1; then
        pg_lsclusters -h 2>/dev/null | while read -r ver name _; do
          "${SUDO[@]}" pg_ctlcluster "$ver" "$name" stop >/dev/null 2>&1 || true
        done
      fi
    fi
  done
fi

# The browser tests' npm packages, again whenever the lock file changed.
BROWSER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../browser" && pwd)
STAMP=$BROWSER_DIR/node_modules/.installed-from-lock
if ! cmp -s "$BROWSER_DIR/package-lock.json" "$STAMP" 2>/dev/null; then
  echo "install-deps: npm ci in tests/browser" >&2
  (cd "$BROWSER_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$BROWSER_DIR/package-lock.json" "$STAMP"
fi

if [ "$WITH_NEXTEST" = 1 ]; then
  command -v cargo >/dev/null 2>&1 || { echo "install-deps: cargo not found (install Rust with rustup)" >&2; exit 1; }
  if ! cargo nextest --version >/dev/null 2>&1; then
    echo "install-deps: installing cargo-nextest" >&2
    cargo install cargo-nextest --locked
  fi
fi
