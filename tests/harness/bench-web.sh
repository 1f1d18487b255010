#!/usr/bin/env bash
# tests/harness/bench-web.sh -- the invoice page under wrk (benches/web.rs) and
# the invoice PDF render time (benches/pdf.rs), release build. Installs wrk
# (Debian package) if missing. The figures go into docs/BENCHMARKS.md.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
if ! command -v wrk >/dev/null 2>&1; then
  SUDO=(); [ "$(id -u)" = 0 ] || SUDO=(sudo)
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk
fi
POSTDESK_LOG=warn cargo bench --bench web
cargo bench --bench pdf
