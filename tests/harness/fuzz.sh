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
#
# FUZZ_TARGETS (default: both) picks targets; FUZZ_JOBS=N runs N independent
# libFuzzer processes sharing the corpus (use the machine's cores for a long
# run; their execution counts are summed, from each process's own log);
# FUZZ_LOG_DIR keeps the full libFuzzer logs (default: a temporary
# directory).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
SECONDS_PER_TARGET=${1:-60}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
cd fuzz
mkdir -p corpus/inbound_mail corpus/signed_link
find ../fixtures -name '*.eml' -exec cp -n {} corpus/inbound_mail/ \;
# hand-made seeds: our signed Message-IDs (key "fuzz", as in the target)
cp -n seeds/*.eml corpus/inbound_mail/
cargo fuzz build --sanitizer none -O
if [ -n "${FUZZ_LOG_DIR:-}" ]; then
  LOGS=$FUZZ_LOG_DIR
  mkdir -p "$LOGS"
else
  LOGS=$(mktemp -d)
  trap 'rm -rf "$LOGS"' EXIT
fi
JOBS=${FUZZ_JOBS:-1}
for target in ${FUZZ_TARGETS:-inbound_mail signed_link}; do
  echo "== $target, ${SECONDS_PER_TARGET}s"
  JOB_ARGS=()
  if [ "$JOBS" -gt 1 ]; then
    # each job logs to $LOGS/$target-jobs/fuzz-N.log
    mkdir -p "$LOGS/$target-jobs"
    JOB_ARGS=(-jobs="$JOBS" -workers="$JOBS" -close_fd_mask=1)
  fi
  if ! (cd "$LOGS/$target-jobs" 2>/dev/null || true
    cargo fuzz run --fuzz-dir "$ROOT/fuzz" --sanitizer none -O "$target" \
      "$ROOT/fuzz/corpus/$target" -- \
      -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
      -max_len=131072 -print_final_stats=1 "${JOB_ARGS[@]}") >"$LOGS/$target" 2>&1; then
    tail -n 60 "$LOGS/$target" >&2
    echo "fuzz.sh: $target failed; its input is under fuzz/artifacts/$target/" >&2
    exit 1
  fi
  # With jobs, each process's own log holds its final stats (libFuzzer's
  # main log repeats them: counting both would count every run twice).
  STATS=("$LOGS/$target")
  if [ "$JOBS" -gt 1 ]; then
    STATS=("$LOGS/$target-jobs"/fuzz-*.log)
  fi
  grep -hE '^(Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb|INFO: seed corpus)' "${STATS[@]}" || true
  awk '/^stat::number_of_executed_units/ {n += $2} END {printf "%s: %d executions in all\n", "'"$target"'", n}' "${STATS[@]}"
done
