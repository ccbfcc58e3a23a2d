#!/usr/bin/env bash
# Full-size check of `sdc convert --format onnx` (a long run, not part of CI): a random full-size
# SD1.5 fp16 checkpoint is exported at f32 (the UNet, 3.4 GB, goes to ONNX external data), then
# ONNX Runtime (tests/onnx, npm onnxruntime-node) runs one UNet step at 512x512 and compares it
# with sdc's own f32 step on the same inputs (max|diff| / max|ref| <= 1e-3).
#
#   bash bench/onnx_full_size.sh DIR      (after `ninja -C build sdc sdc_bench_convert_fixture
#                                           sdc_bench_onnx_unet_reference`; needs ~12 GB in DIR)
set -euo pipefail
dir=${1:?usage: onnx_full_size.sh DIR}
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build"
mkdir -p "$dir"
if [ ! -f "$dir/sd15-random-fp16.safetensors" ]; then
  "$build/bench/sdc_bench_convert_fixture" "$dir"
fi
t0=$(date +%s.%N)
/usr/bin/time -f "convert: %e s, peak RSS %M KiB" "$build/sdc" convert \
  -u "$dir/sd15-random-fp16.safetensors" --format onnx --force -o "$dir/onnx" 2>&1 | grep -v '^onnx \|^read\|^sha256'
ls -l "$dir/onnx/unet"
/usr/bin/time -f "sdc f32 step: %e s wall with load, peak RSS %M KiB" \
  "$build/bench/sdc_bench_onnx_unet_reference" "$dir/sd15-random-fp16.safetensors" "$dir/unet-step.safetensors"
cat > "$dir/spec.json" <<JSON
{"runs": [{"label": "full-size unet 512x512 t500", "model": "$dir/onnx/unet/unet_fuse_1.onnx",
  "inputs": {"sample": {"file": "$dir/unet-step.safetensors", "tensor": "sample"},
             "timestep": {"file": "$dir/unet-step.safetensors", "tensor": "timestep"},
             "encoder_hidden_states": {"file": "$dir/unet-step.safetensors", "tensor": "encoder_hidden_states"}},
  "outputs": {"out_sample": [{"file": "$dir/unet-step.safetensors", "tensor": "out_sample", "tol": 1e-3, "label": "sdc f32"}]}}]}
JSON
/usr/bin/time -f "onnxruntime: %e s wall with load, peak RSS %M KiB" \
  node "$root/tests/onnx/run_onnx_models.js" "$dir/spec.json"
echo "total $(echo "$(date +%s.%N) - $t0" | bc) s"
