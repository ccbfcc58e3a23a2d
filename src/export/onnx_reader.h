// Reading an ONNX export folder that `sdc convert --format onnx` wrote back into what it came
// from: the weights under their LDM names (initializers in the forms the writer used — ".T"
// transposed back, ".1x1"/".chw" reshaped back, ".f16" kept as f16, constants skipped) and the
// components' diffusers configs from model.json. The result is a TensorFile that
// model::load_model accepts like a compiled .gguf, so `sdc compare` can run an export's weights
// through sdc's backend. Only sdc's own exports are read (model.json "format": "sdc-onnx";
// initializers as raw_data or external data).
#pragma once

#include <string>

#include "io/tensor_file.h"

namespace sdc::exporter {

// True when `dir` holds a model.json of an sdc ONNX export.
bool is_onnx_export(const std::string& dir);

// sdc::Error naming the file and field for anything that is not a well-formed sdc export.
io::TensorFile read_onnx_export(const std::string& dir);

}  // namespace sdc::exporter
