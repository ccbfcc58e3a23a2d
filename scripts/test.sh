#!/usr/bin/env bash
# The README's second command: build everything (warnings are errors) and run the whole test suite.
#   scripts/test.sh            Release build in build/, all tests
#   scripts/test.sh --sanitize ASan+UBSan build in build-asan/, all tests
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
BUILD=build
EXTRA=()
SKIP=()
if [ "${1:-}" = "--sanitize" ]; then
  BUILD=build-asan
  EXTRA=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSDC_SANITIZE=ON -DCMAKE_CXX_FLAGS=-O1)
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
  # The full-size smoke test (~6 GB) and the whole-pipeline/benchmark runs of the sdc binary are
  # covered by the Release run; under ASan they would take most of CI's time for no new coverage.
  SKIP=(-E 'FullSizeSd15|GeneratePipeline|Bench|ConvertPipeline')
else
  EXTRA=(-DCMAKE_BUILD_TYPE=Release)
fi
cmake -S . -B "$BUILD" -G Ninja -DSDC_WERROR=ON "${EXTRA[@]}"
cmake --build "$BUILD"
cd "$BUILD"
ctest --output-on-failure -j2 --timeout 1200 "${SKIP[@]}"
