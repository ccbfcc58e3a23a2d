#!/usr/bin/env bash
# Installs the Debian packages sdc builds and tests with (idempotent; needs root or sudo).
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev clang-format
  libdnnl-dev            # oneDNN: convolution and matmul kernels
  ocl-icd-opencl-dev     # OpenCL headers/loader: dnnl-config.cmake calls find_package(OpenCL) (only Recommended by libdnnl-dev)
  nlohmann-json3-dev     # JSON: safetensors headers, configs, HTTP bodies
  libcli11-dev           # command-line parsing
  libcpp-httplib-dev     # HTTP server (sdc serve)
  libcurl4-openssl-dev   # downloads from URLs (convert from a link)
  libzip-dev             # PyTorch .ckpt zip archives
  libssl-dev             # SHA-256 (OpenSSL EVP) of sources and LoRAs in compiled models
  libpng-dev libjpeg-dev zlib1g-dev  # images
  libicu-dev             # Unicode normalisation/categories for the CLIP tokenizer
  libgtest-dev libgmock-dev libbenchmark-dev  # tests and micro-benchmarks
  python3-onnx           # tests: the ONNX checker (full check + shape inference) on sdc's ONNX exports
  nodejs                 # tests: runs ONNX Runtime (npm onnxruntime-node) on sdc's ONNX exports
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
# Debian's nodejs comes without npm (a separate package); other nodejs builds include it.
if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Test-only npm tools, pinned by tests/onnx/package-lock.json into tests/onnx/node_modules (not
# committed). --ignore-scripts: onnxruntime-node's install script fetches optional GPU files from
# outside the registry; its CPU library ships in the package itself.
onnx_tests="$(cd "$(dirname "$0")/.." && pwd)/tests/onnx"
stamp="$onnx_tests/node_modules/.sdc-installed-from-lock"
if ! cmp -s "$onnx_tests/package-lock.json" "$stamp" 2>/dev/null; then
  (cd "$onnx_tests" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  cp "$onnx_tests/package-lock.json" "$stamp"
fi
