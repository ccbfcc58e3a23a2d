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
  libsleef-dev           # PyTorch's vectorised float32 log/exp/tan/pow: A1111-exact sigma schedules
  libgtest-dev libgmock-dev libbenchmark-dev  # tests and micro-benchmarks
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
echo "installing: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
