#!/usr/bin/env bash
# tests/harness/bench.sh -- runs the ingest benchmark (benches/ingest.rs) against
# a private Dovecot + Postfix on free loopback ports, then stops them.
# BENCH_MESSAGES (default 10000) and BENCH_LATENCY_MAILS (default 200) size it.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
H=tests/harness
bash "$H/install-deps.sh" --no-nextest
T=$(mktemp -d "${TMPDIR:-/tmp}/postdesk-bench.XXXXXX")
chmod 755 "$T"
trap 'bash "$H/stop-mail.sh" "$T/mail" >/dev/null 2>&1 || true; rm -rf "$T"' EXIT
# shellcheck source=tests/harness/free-port.sh
. "$H/free-port.sh"
ports_lock
IMAP_PORT=$(pick_port 12143) IMAPS_PORT=$(pick_port 12993) LMTP_PORT=$(pick_port 12024) \
SMTP_PORT=$(pick_port 12025) SUBMISSION_PORT=$(pick_port 12587) SUBMISSIONS_PORT=$(pick_port 12465) \
  bash "$H/start-mail.sh" "$T/mail" >/dev/null
ports_unlock
# shellcheck disable=SC1091
. "$T/mail/env.sh"
cargo build --release --bin postdesk
POSTDESK_BIN="$ROOT/target/release/postdesk" POSTDESK_LOG=warn cargo bench --bench ingest
