#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a set time each, on a copy of its checked-in corpus.
#
#   tests/tools/fuzz.sh [SECONDS] [TARGET...]      (or FUZZ_SECONDS=N; default 180 seconds per target)
#
# Installs the nightly toolchain and cargo-fuzz when missing (idempotent), builds every target once
# (release, debug assertions and overflow checks on, no sanitizer: the core has no unsafe code), then
# runs each target's binary with libFuzzer's -max_total_time on a temporary copy of
# fuzz/corpus/<target> with fuzz/dict/<target>.dict, so runs never grow the checked-in corpus.
# Extra libFuzzer options for every target: FUZZ_ARGS (e.g. FUZZ_ARGS="-max_len=1000 -jobs=2").
# Prints the executions per target. Exits non-zero if any target crashed (a panic, a failed check,
# a timeout or running out of memory), with the crash input's path in the output (under
# fuzz/artifacts/<target>/, git-ignored). Reproduce one with:
#   fuzz/target/x86_64-unknown-linux-gnu/release/<target> <crash file>
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
FUZZ="$ROOT/fuzz"
PER_TARGET="${1:-${FUZZ_SECONDS:-180}}"
shift || true
if ! [[ "$PER_TARGET" =~ ^[0-9]+$ ]] || [ "$PER_TARGET" -lt 1 ]; then
  echo "fuzz.sh: SECONDS must be a whole number of seconds, not '$PER_TARGET'" >&2
  exit 2
fi

# Toolchain and cargo-fuzz, only when missing.
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo +nightly fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked

cd "$FUZZ"
HOST="$(rustc +nightly -vV | sed -n 's/^host: //p')"
BIN="$FUZZ/target/$HOST/release"
start=$(date +%s)
cargo +nightly fuzz build -O --debug-assertions --sanitizer none
echo "fuzz: built every target in $(( $(date +%s) - start ))s"

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
summary=()
for t in "${targets[@]}"; do
  corpus="$work/$t"
  mkdir -p "$corpus" "$FUZZ/artifacts/$t"
  if [ -d "$FUZZ/corpus/$t" ]; then
    cp -R "$FUZZ/corpus/$t/." "$corpus/"
  fi
  dict=()
  if [ -f "$FUZZ/dict/$t.dict" ]; then
    dict=(-dict="$FUZZ/dict/$t.dict")
  fi
  log="$work/$t.log"
  echo "fuzz: $t for ${PER_TARGET}s"
  set +e
  "$BIN/$t" "$corpus" "${dict[@]}" -max_total_time="$PER_TARGET" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -len_control=200 -artifact_prefix="$FUZZ/artifacts/$t/" ${FUZZ_ARGS:-} >"$log" 2>&1
  rc=$?
  set -e
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  if [ "$rc" -ne 0 ]; then
    tail -n 60 "$log"
    artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
    echo "fuzz: $t CRASHED after ${execs:-?} executions (exit $rc); input: ${artifact:-see the log above}"
    failed+=("$t")
    summary+=("$t: CRASH after ${execs:-?} executions, ${artifact:-no artifact}")
  else
    cov="$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)"
    echo "fuzz: $t ${execs:-?} executions, no crash (${cov:-cov: ?})"
    summary+=("$t: ${execs:-?} executions, no crash")
  fi
done

echo "fuzz: summary (${PER_TARGET}s per target)"
printf '  %s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: crashed: ${failed[*]}" >&2
  exit 1
fi
