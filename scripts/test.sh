#!/usr/bin/env bash
# The README's second command: build everything (warnings are errors) and run the whole test suite.
#   scripts/test.sh            Release build in build/, all tests
#   scripts/test.sh --sanitize ASan+UBSan build in build-asan/, the input-handling tests
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh build test
BUILD=build
EXTRA=()
SKIP=()
if [ "${1:-}" = "--sanitize" ]; then
  BUILD=build-asan
  # Its own build type: -O1 with line tables only. (RelWithDebInfo's -O3 -g under ASan+UBSan took
  # GCC 16 of CI's minutes; this takes a third of that and still names file:line in reports.)
  EXTRA=(-DCMAKE_BUILD_TYPE=Sanitize "-DCMAKE_CXX_FLAGS_SANITIZE=-O1 -g1" -DSDC_SANITIZE=ON)
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
  # The sanitizers guard the code that reads untrusted bytes and options: the file formats, model
  # layer, tokenizer/prompt/image code, the CLI's refusals and what HTTP requests reach (engine,
  # server). The numeric kernels and whole pipelines (minutes under ASan, ~6 GB for the full-size
  # smoke test), the browser tests and the timing-bound 50-client test are covered by the Release run.
  SKIP=(-L 'core|io|model|text|sampling|imaging|pipeline|cli|engine|server|export'
    -E 'GeneratePipeline|ControlNetCli|Convert|Bench|InspectImage|IsaCap|FiftyConcurrent|browser|A1111Case|A1111Batch|OnnxRuntime|OnnxChecker')
else
  EXTRA=(-DCMAKE_BUILD_TYPE=Release)
fi
if [ "$BUILD" = build ] && git rev-parse --git-dir >/dev/null 2>&1; then
  # Formatting is part of the build contract (.clang-format at the root): list offenders and stop.
  git ls-files '*.cpp' '*.h' | xargs clang-format --dry-run -Werror
fi
if [ "$BUILD" = build ]; then
  # The browser tests' one npm dependency (playwright-core), exactly as package-lock.json pins it.
  if [ ! -d tests/browser/node_modules ] || [ tests/browser/package-lock.json -nt tests/browser/node_modules ]; then
    (cd tests/browser && npm ci --no-audit --no-fund)
  fi
  # ONNX Runtime for the export tests (onnxruntime-node, pinned by tests/onnx/package-lock.json).
  # --ignore-scripts: its install script fetches optional GPU files from outside the registry;
  # the CPU library ships in the package itself.
  if [ ! -d tests/onnx/node_modules ] || [ tests/onnx/package-lock.json -nt tests/onnx/node_modules ]; then
    (cd tests/onnx && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  fi
fi
# Compiler cache (ccache): a second run recompiles only what changed (scripts/compiler-cache.sh).
source scripts/compiler-cache.sh
compiler_cache_cmake_args
EXTRA+=("${COMPILER_CACHE_ARGS[@]}")
cmake -S . -B "$BUILD" -G Ninja -DSDC_WERROR=ON "${EXTRA[@]}"
if [ ${#SKIP[@]} -gt 0 ]; then
  # Only what the sanitizer run executes: the tool and the test programs of those layers.
  cmake --build "$BUILD" --target sdc sdc_tests_core sdc_tests_io sdc_tests_model \
    sdc_tests_text sdc_tests_sampling sdc_tests_imaging sdc_tests_pipeline sdc_tests_cli \
    sdc_tests_engine sdc_tests_server sdc_tests_export
else
  cmake --build "$BUILD"
fi
cd "$BUILD"
ctest --output-on-failure -j2 --timeout 1200 "${SKIP[@]}"
