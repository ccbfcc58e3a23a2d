#!/usr/bin/env bash
# Installs the Debian packages sdc's scripts need, by group (idempotent; needs root or sudo).
#   scripts/install-deps.sh [GROUP...]     GROUP: build (default), test, fuzz, ci
# Every find_package / pkg_check_modules in cmake/, bench/, fuzz/ and every tool a script runs is
# here, with what it is for. Packages are installed with --no-install-recommends, so whatever a
# listed package only Recommends (`apt-cache depends PKG`) and sdc needs must be listed itself.
# scripts/check-bare-install.sh proves the build group on a bare Debian 12 root.
set -euo pipefail

# build: `bash scripts/setup.sh` — configure the whole tree (tests/ and bench/ are part of it, so
# CMake needs GTest and benchmark too) and build Release. What cmake/SdcDependencies.cmake finds.
BUILD=(
  build-essential       # g++ 12, make, libc headers; g++ brings libgomp (OpenMP) and libasan/libubsan (--sanitize)
  cmake ninja-build     # the build (CMakeLists.txt needs CMake >= 3.25: bookworm has 3.25)
  pkg-config            # pkg_check_modules(libzip, icu-uc, icu-i18n)
  libdnnl-dev           # find_package(dnnl): oneDNN convolution and matmul kernels
  ocl-icd-opencl-dev    # dnnl-config.cmake calls find_package(OpenCL); libdnnl-dev only Recommends it
  nlohmann-json3-dev    # find_package(nlohmann_json): safetensors headers, configs, --json output
  libcli11-dev          # find_package(CLI11): command line
  libpng-dev            # find_package(PNG): PNG read/write with the parameters text chunk
  libjpeg-dev           # find_package(JPEG): JPEG input images
  zlib1g-dev            # find_package(ZLIB)
  libssl-dev            # find_package(OpenSSL): SHA-256 (libcrypto EVP) of sources and LoRAs
  libzip-dev            # pkg_check_modules(libzip): PyTorch .ckpt zip archives
  libicu-dev            # pkg_check_modules(icu-uc icu-i18n): Unicode clean-up in the CLIP tokenizer
  libgtest-dev libgmock-dev  # find_package(GTest): tests/ (configured by default)
  libbenchmark-dev      # find_package(benchmark): bench/ kernel micro-benchmarks (configured by default)
  libcpp-httplib-dev    # find_package(httplib) (cpp-httplib): the HTTP server of `sdc serve`
  libcurl4-openssl-dev  # find_package(CURL): downloads for conversion from a link
  libsleef-dev          # pkg_check_modules(sleef): PyTorch's vectorised float32 log/exp/tan/pow, for A1111-exact sigma schedules
  ccache                # setup.sh and test.sh compile through it: a re-run rebuilds only what changed
)

# test: tools only scripts/test.sh runs (test-only additions, Debian or not, go here or beside it).
TEST=(
  clang-format          # test.sh checks formatting: clang-format --dry-run -Werror (.clang-format)
  git                   # test.sh lists the sources to check with git ls-files
  chromium              # the web page's browser tests (tests/browser: playwright-core drives it)
  python3-onnx          # the ONNX checker (full check + shape inference) on sdc's ONNX exports
)

# fuzz: scripts/fuzz.sh configures the tree with clang and links libFuzzer targets.
FUZZ=(
  clang                 # clang 14: -fsanitize=fuzzer needs clang
  libclang-rt-14-dev    # libFuzzer, ASan and UBSan runtimes for clang (clang only Recommends llvm-14-dev)
  libomp-14-dev         # find_package(OpenMP) under clang: omp.h and libomp (not even Recommended by clang)
)

# ci: tools .ci/run needs beyond the other groups.
CI=(
  mmdebstrap            # check-bare-install.sh: a minimal Debian 12 root
)

groups=("$@")
if [ ${#groups[@]} -eq 0 ]; then groups=(build); fi
PKGS=()
for g in "${groups[@]}"; do
  case "$g" in
    build) PKGS+=("${BUILD[@]}") ;;
    test) PKGS+=("${TEST[@]}") ;;
    fuzz) PKGS+=("${FUZZ[@]}") ;;
    ci) PKGS+=("${CI[@]}") ;;
    *)
      echo "install-deps.sh: unknown group '$g' (expected build, test, fuzz or ci)" >&2
      exit 2
      ;;
  esac
done

# The npm-based test tools (tests/browser, tests/onnx) need Node.js and npm; Debian packs npm
# apart from nodejs, other Node.js builds (nodesource) include it.
if [[ " ${groups[*]} " == *" test "* ]] && ! command -v npm >/dev/null 2>&1; then
  PKGS+=(nodejs npm)
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
SUDO=()
if [ "$(id -u)" != 0 ]; then SUDO=(sudo); fi
echo "installing: ${missing[*]}"
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
