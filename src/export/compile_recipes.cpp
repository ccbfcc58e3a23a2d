// Recipe text. Symbolic dimensions are given values per size: batch = -b, height/width = the
// latent size, image_height/image_width = pixels, height_2 … = ceil(height / 2^k), sequence = 77.
#include "export/compile_recipes.h"

#include <algorithm>
#include <set>

namespace sdc::exporter {

namespace {

int64_t halve(int64_t x, int k) {
  for (int i = 0; i < k; ++i) x = (x + 1) / 2;
  return x;
}

// The value of a dimension for one image size (pixels).
int64_t dim_value(const Dim& d, int batch, int w, int h) {
  if (d.value >= 0) return d.value;
  const std::string& p = d.param;
  if (p == "batch") return batch;
  if (p == "sequence") return 77;
  if (p == "image_height") return h;
  if (p == "image_width") return w;
  for (const char* axis : {"height", "width"}) {
    const std::string a = axis;
    const int64_t latent = (a == "height" ? h : w) / 8;
    if (p == a) return latent;
    for (int k = 1; k <= 8; ++k)
      if (p == a + "_" + std::to_string(1 << k)) return halve(latent, k);
  }
  return 1;
}

std::string shape_list(const std::vector<ValueInfo>& inputs, int batch, int w, int h,
                       const std::string& open, const std::string& sep, const std::string& close) {
  std::string s = open;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (i) s += ",";
    s += "[";
    for (size_t j = 0; j < inputs[i].dims.size(); ++j) {
      if (j) s += sep;
      s += std::to_string(dim_value(inputs[i].dims[j], batch, w, h));
    }
    s += "]";
  }
  return s + close;
}

std::string trt_shapes(const std::vector<ValueInfo>& inputs, int batch, int w, int h) {
  std::string s;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (i) s += ",";
    s += inputs[i].name + ":";
    for (size_t j = 0; j < inputs[i].dims.size(); ++j) {
      if (j) s += "x";
      s += std::to_string(dim_value(inputs[i].dims[j], batch, w, h));
    }
  }
  return s;
}

std::string size_tag(int w, int h) {
  return std::to_string(w) + "x" + std::to_string(h);
}

}  // namespace

std::string bm1684x_recipe(const std::vector<RecipeComponent>& components, const RecipeSizes& s) {
  std::string out =
      "#!/usr/bin/env bash\n"
      "# Compile this ONNX export for Sophgo BM1684X with tpu-mlir (run inside its docker image,\n"
      "# after `source envsetup.sh`). Written by sdc convert --format onnx; sdc never runs it.\n"
      "# QUANTIZE: F16 (default), BF16 or F32. One bmodel per component and size; the sizes of\n"
      "# a component are then combined into one bmodel with model_tool.\n"
      "set -euo pipefail\n"
      "cd \"$(dirname \"$0\")\"\n"
      "QUANTIZE=${QUANTIZE:-F16}\n"
      "q=$(echo \"$QUANTIZE\" | tr 'A-Z' 'a-z')\n"
      "mkdir -p bmodel\n";
  const auto sizes = s.fixed ? std::vector<std::pair<int, int>>{s.sizes.front()} : s.sizes;
  for (const auto& c : components) {
    out += "\n# " + c.id + "\n";
    std::string parts;
    std::set<std::string> seen;  // a component whose shapes do not depend on the size: once
    for (const auto& [w, h] : sizes) {
      const std::string shapes = shape_list(c.inputs, s.batch, w, h, "[", ",", "]");
      if (!seen.insert(shapes).second) continue;
      const std::string name = c.id + "_" + size_tag(w, h);
      // Quoted: the brackets would otherwise be glob patterns to the shell.
      out += "model_transform.py --model_name " + name + " --model_def " + c.path +
             " \\\n    --input_shapes '" + shapes + "' --mlir bmodel/" + name + ".mlir\n";
      out += "model_deploy.py --mlir bmodel/" + name +
             ".mlir --quantize \"$QUANTIZE\" --chip bm1684x \\\n    --model bmodel/" + name +
             "_\"$q\".bmodel\n";
      parts += " bmodel/" + name + "_\"$q\".bmodel";
    }
    if (seen.size() > 1)
      out += "model_tool --combine" + parts + " -o bmodel/" + c.id + "_\"$q\".bmodel\n";
  }
  return out;
}

std::string tensorrt_recipe(const std::vector<RecipeComponent>& components, const RecipeSizes& s) {
  std::string out =
      "#!/usr/bin/env bash\n"
      "# Build TensorRT engines (8.6 or later) for this ONNX export with trtexec. Written by sdc\n"
      "# convert --format onnx; sdc never runs it. PRECISION: --fp16 (default) or \"\" for f32.\n"
      "set -euo pipefail\n"
      "cd \"$(dirname \"$0\")\"\n"
      "PRECISION=${PRECISION---fp16}\n"
      "mkdir -p engines\n";
  // The optimisation profile spans every declared size: the smallest and largest width and
  // height; the first size at batch -b is the optimum.
  int min_w = s.sizes.front().first, max_w = min_w, min_h = s.sizes.front().second, max_h = min_h;
  for (const auto& [w, h] : s.sizes) {
    min_w = std::min(min_w, w), max_w = std::max(max_w, w);
    min_h = std::min(min_h, h), max_h = std::max(max_h, h);
  }
  for (const auto& c : components) {
    out += "\n# " + c.id + "\n";
    out += "trtexec --onnx=" + c.path + " --saveEngine=engines/" + c.id + ".plan $PRECISION";
    if (!s.fixed) {
      const auto& [ow, oh] = s.sizes.front();
      out += " \\\n    --minShapes=" + trt_shapes(c.inputs, 1, min_w, min_h) +
             " \\\n    --optShapes=" + trt_shapes(c.inputs, s.batch, ow, oh) +
             " \\\n    --maxShapes=" + trt_shapes(c.inputs, s.batch, max_w, max_h);
    }
    out += "\n";
  }
  return out;
}

}  // namespace sdc::exporter
