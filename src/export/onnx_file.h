// Writing an OnnxModel as a .onnx file (a serialized ModelProto), streamed: node and value
// messages are built in memory, initializer bytes are produced and written one tensor at a time.
// Weights go to an ONNX external-data file next to the model when the model would pass the
// 2 GB protobuf limit, or always when asked (`external` = Always): tensors of 1 KiB and more are
// written there at 4 KiB-aligned offsets (so that runtimes can memory-map them), smaller ones
// stay inline. Deterministic: the same model gives the same bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "export/onnx_model.h"

namespace sdc::exporter {

enum class ExternalData { WhenNeeded, Always };

struct OnnxFileOptions {
  ExternalData external = ExternalData::WhenNeeded;
  std::string producer_version;
  // Called after each initializer is written: (written, total).
  std::function<void(size_t, size_t)> on_tensor;
};

struct OnnxFileResult {
  std::vector<std::string> files;  // the .onnx and, if any, its external-data file (file names)
  uint64_t bytes = 0;              // all files together
};

// Models whose initializers exceed this many bytes are written with external data.
inline constexpr uint64_t kInlineLimit = (uint64_t(1) << 31) - (uint64_t(64) << 20);

// Writes DIR/FILE_NAME (and DIR/FILE_NAME.data). Files are written in place: callers write into
// a temporary folder that they commit as a whole (see onnx_folder.h). Throws sdc::Error on any
// I/O failure, naming the file.
OnnxFileResult write_onnx_file(const OnnxModel& model, const std::string& dir,
                               const std::string& file_name, const OnnxFileOptions& options);

}  // namespace sdc::exporter
