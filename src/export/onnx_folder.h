// `sdc convert --format onnx -o DIR`: every component as ONNX in the layout accelerator compile
// steps read, plus DIR/model.json (shapes, precisions, sources and sha256s, baked LoRAs,
// recommended sampler settings, hyper-parameters) and the compile recipes. The folder is written
// as a temporary sibling and renamed into place when complete: a failure (a full disk, an
// interrupt) leaves neither a partial DIR nor the temporary folder. An existing non-empty DIR is
// refused unless `force` (it is then replaced, only once the new one is complete).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "export/onnx_components.h"
#include "export/onnx_file.h"
#include "model/compiled_model.h"
#include "model/model_loader.h"

namespace sdc::exporter {

struct OnnxExportOptions {
  std::string dir;
  bool force = false;
  ShapeOptions shapes;                      // fixed (--static), batch, first size
  std::vector<std::pair<int, int>> sizes;   // every -s size (width, height), for the recipes
  std::map<std::string, ElemType> compute;  // "unet", "text_encoder", "vae", "controlnet"
  bool control_inputs = false;              // UNet with residual inputs even without -c
  ExternalData external = ExternalData::WhenNeeded;
  std::string tool;  // "sdc 0.1.0"
  // Progress: (component id, tensors written, total); may throw to abort (an interrupt).
  std::function<void(const std::string&, size_t, size_t)> on_tensor;
};

struct OnnxExportResult {
  std::vector<std::string> files;  // relative to DIR
  uint64_t bytes = 0;
};

// Refuses, before any work, an output that cannot become the export folder: a file, or an
// existing non-empty folder without `force` (sdc::Error naming it).
void check_onnx_output(const std::string& dir, bool force);

// The ONNX element type for a stored precision (f32 -> Float, f16 -> Float16); sdc::Error for
// bf16, which ONNX runtimes and the target compilers do not take as a graph type.
ElemType onnx_compute_type(DType precision, const std::string& component);

OnnxExportResult export_onnx_folder(const model::LoadedModel& m, const model::CompiledInfo& info,
                                    const OnnxExportOptions& options);

}  // namespace sdc::exporter
