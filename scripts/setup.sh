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
  # A first image from the tiny test model (random weights: expect coloured noise).
  ./build/sdc generate -m "$FIX/tiny-sd15/model.safetensors" --model-config "$FIX/tiny-sd15/diffusers" \
    -p "a photo of a cat" -W 256 -H 256 --steps 8 --seed 42 -o first-image.png
fi
