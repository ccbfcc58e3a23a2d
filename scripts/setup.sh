#!/usr/bin/env bash
# The README's first command: install dependencies, build a Release binary, run a first command,
# and say what to do next.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh build
# Through ccache (scripts/compiler-cache.sh): re-running this after an update rebuilds only what changed.
source scripts/compiler-cache.sh
compiler_cache_cmake_args
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${COMPILER_CACHE_ARGS[@]}"
cmake --build build --target sdc
FIX="${SDC_FIXTURES:-$(pwd)/../shared/fixtures}"
./build/sdc --version
mkdir -p models  # where the next steps say to put a real checkpoint (ignored by git)
echo
if [ -f "$FIX/tiny-sd15/model.safetensors" ]; then
  # A first image from the tiny test model.
  ./build/sdc generate -m "$FIX/tiny-sd15/model.safetensors" --model-config "$FIX/tiny-sd15/diffusers" \
    -p "a photo of a cat" -W 256 -H 256 --steps 8 --seed 42 -o first-image.png >/dev/null
  echo "first-image.png is coloured noise: the tiny test model that made it has random weights."
else
  echo "No first image: the tiny test model is not in $FIX/tiny-sd15 (set SDC_FIXTURES)."
fi
echo "For real pictures, put a Stable Diffusion 1.5 checkpoint in models/, e.g. v1-5-pruned-emaonly.safetensors,"
echo "then run: build/sdc generate -m models/v1-5-pruned-emaonly.safetensors -p \"a photo of a cat\" -o cat.png"
