#!/usr/bin/env bash
# tests/harness/fuzz.sh [SECONDS] -- runs each cargo-fuzz target of fuzz/ for
# SECONDS (default 60) and prints libFuzzer's execution count per target.
# Installs cargo-fuzz if missing. The inbound_mail target starts from the
# mail corpora under fixtures/ (686 real and RFC messages). A crash stops the
# run with libFuzzer's report; its input is kept under fuzz/artifacts/ — turn
# it into a regression test before fixing it.
#
# The machine has only the stable toolchain; cargo-fuzz passes unstable -Z
# flags to rustc, which RUSTC_BOOTSTRAP=1 allows. No sanitizer: the code is
# safe Rust, and what is looked for is a panic or a hang.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
SECONDS_PER_TARGET=${1:-60}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
cd fuzz
mkdir -p corpus/inbound_mail corpus/signed_link
find ../fixtures -name '*.eml' -exec cp -n {} corpus/inbound_mail/ \;
cargo fuzz build --sanitizer none -O
LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT
for target in inbound_mail signed_link; do
  echo "== $target, ${SECONDS_PER_TARGET}s"
  if ! cargo fuzz run --sanitizer none -O "$target" "corpus/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
    -max_len=131072 -print_final_stats=1 >"$LOGS/$target" 2>&1; then
    tail -n 60 "$LOGS/$target" >&2
    echo "fuzz.sh: $target failed; its input is under fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E '^(Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb|INFO: seed corpus)' "$LOGS/$target" || true
done
