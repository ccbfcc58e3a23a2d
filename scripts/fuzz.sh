#!/usr/bin/env bash
# Builds every libFuzzer target (fuzz/*_fuzzer.cpp) with clang in build-fuzz/, writes a seed
# corpus there, and runs each fuzzer for SECONDS (default 60). Fails if any fuzzer reports a
# crash, a sanitizer error, a leak, a timeout or running out of memory; the input that did it is
# kept in build-fuzz/artifacts/<name>/. New inputs accumulate in build-fuzz/corpus/<name>/.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-60}"
BUILD=build-fuzz
bash scripts/install-deps.sh build fuzz
# Through ccache like the other builds (scripts/compiler-cache.sh): a re-run compiles what changed.
source scripts/compiler-cache.sh
compiler_cache_cmake_args
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ "${COMPILER_CACHE_ARGS[@]}" \
  -DSDC_FUZZ=ON -DSDC_BUILD_TESTS=OFF -DSDC_WERROR=ON >/dev/null
cmake --build "$BUILD" --target fuzzers
rm -rf "$BUILD/seeds"
"$BUILD/fuzz/sdc_fuzz_seeds" "$BUILD/seeds"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
status=0
shopt -s nullglob
for src in fuzz/*_fuzzer.cpp; do  # the sources, so that a stale binary is never run
  name=$(basename "$src" _fuzzer.cpp)
  fuzzer="$BUILD/fuzz/${name}_fuzzer"
  corpus="$BUILD/corpus/$name" artifacts="$BUILD/artifacts/$name" log="$BUILD/$name.log"
  mkdir -p "$corpus" "$artifacts"
  seeds=()
  if [ -d "$BUILD/seeds/$name" ]; then seeds=("$BUILD/seeds/$name"); fi
  echo "== $name: ${DURATION}s"
  if "$fuzzer" "$corpus" "${seeds[@]}" -max_total_time="$DURATION" -max_len=16384 -timeout=10 \
      -rss_limit_mb=2048 -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1; then
    grep -E "stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb" "$log" | sed 's/^/   /' || true
  else
    echo "FAIL: $name found a problem (log: $log, input: $artifacts/)"
    tail -n 60 "$log"
    status=1
  fi
done
exit $status
