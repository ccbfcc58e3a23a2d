#!/usr/bin/env bash
# The README's first command: install dependencies, build a Release binary, run a first command.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build --target sdc
FIX="${SDC_FIXTURES:-$(pwd)/../shared/fixtures}"
./build/sdc --version
if [ -f "$FIX/tiny-sd15/model.safetensors" ]; then
  ./build/sdc inspect "$FIX/tiny-sd15/model.safetensors"
fi
