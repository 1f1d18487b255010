#!/usr/bin/env bash
# tests/harness/fuzz-coverage.sh [TARGET] -- which of Postdesk's code a fuzz
# target's corpus reaches (default target: inbound_mail; corpus: what
# tests/harness/fuzz.sh grew under fuzz/corpus/TARGET).
#
# llvm-cov of the toolchain's LLVM is not on this machine (no llvm-tools
# component, Debian's llvm-14 cannot read its profiles), so this uses
# libFuzzer's own report instead: the target is built once more with
# AddressSanitizer (whose runtime symbolizes), every corpus input is run once
# with -print_coverage=1, and the covered/uncovered functions of src/ are
# summed per file: functions reached and edges (branches) taken.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET=${1:-inbound_mail}
cd "$ROOT/fuzz"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
command -v llvm-symbolizer >/dev/null 2>&1 || {
  echo "fuzz-coverage: needs llvm-symbolizer (Debian package llvm)" >&2
  exit 1
}
[ -d "corpus/$TARGET" ] || {
  echo "fuzz-coverage: no corpus/$TARGET: run tests/harness/fuzz.sh first" >&2
  exit 1
}
export RUSTC_BOOTSTRAP=1
BUILD=$ROOT/fuzz/coverage/target
cargo fuzz build --sanitizer address -O --target-dir "$BUILD" "$TARGET" >&2
REPORT=$ROOT/fuzz/coverage/$TARGET.txt
ASAN_OPTIONS=detect_leaks=0 ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer) \
  "$BUILD/x86_64-unknown-linux-gnu/release/$TARGET" -runs=0 -rss_limit_mb=4096 \
  -max_len=131072 -print_coverage=1 "corpus/$TARGET" >"$REPORT" 2>&1
echo "inputs: $(ls "corpus/$TARGET" | wc -l) (corpus/$TARGET); full report: $REPORT"
echo "file | functions reached / listed | edges taken / instrumented"
grep -E '^(COVERED|UNCOVERED)_FUNC' "$REPORT" | grep " $ROOT/src/" |
  sed -E "s#^(COVERED|UNCOVERED)_FUNC: hits: ([0-9]+) edges: ([0-9]+)/([0-9]+) .* $ROOT/(src/[^:]*):.*#\5 \2 \3 \4#" |
  awk '{ f[$1]++; if ($2 > 0) r[$1]++; e[$1] += $3; t[$1] += $4 }
       END { for (k in f) printf "%s | %d / %d | %d / %d\n", k, r[k], f[k], e[k], t[k] }' |
  sort
