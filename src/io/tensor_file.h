// TensorFile: what every model-file reader returns — the tensors under the names the file uses,
// the file's own metadata, and where it came from. Readers: safetensors.h, ckpt.h, gguf.h,
// diffusers_folder.h; open_tensor_file() picks one by looking at the bytes, not the extension.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "common/tensor.h"

namespace sdc::io {

enum class FileFormat { Safetensors, Ckpt, Diffusers, Gguf };
const char* format_name(FileFormat f);  // "safetensors", "ckpt", "diffusers", "gguf"

struct TensorFile {
  std::string path;
  FileFormat format = FileFormat::Safetensors;
  uint64_t file_size = 0;   // bytes on disk (sum of the tensor files for a folder)
  WeightMap tensors;        // names exactly as stored in the file
  nlohmann::json metadata;  // safetensors __metadata__, GGUF key/values, diffusers configs
};

}  // namespace sdc::io
