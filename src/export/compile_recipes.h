// The compile recipes written beside an ONNX export: compile-bm1684x.sh (tpu-mlir:
// model_transform.py + model_deploy.py per component and size, sizes combined with model_tool)
// and compile-tensorrt.sh (trtexec with min/opt/max shapes, or the fixed ones). sdc never runs
// them; they are command lines for exactly the files written, for users with those tools.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "export/onnx_model.h"

namespace sdc::exporter {

struct RecipeComponent {
  std::string id, path;           // "unet", "unet/unet_fuse_1.onnx"
  std::vector<ValueInfo> inputs;  // as declared in the model
  bool float16 = false;           // an f16 graph
};

struct RecipeSizes {
  std::vector<std::pair<int, int>> sizes;  // (width, height) in pixels, first = optimum
  int batch = 1;
  bool fixed = false;  // --static: the models have fixed shapes
};

std::string bm1684x_recipe(const std::vector<RecipeComponent>& components, const RecipeSizes& s);
std::string tensorrt_recipe(const std::vector<RecipeComponent>& components, const RecipeSizes& s);

}  // namespace sdc::exporter
