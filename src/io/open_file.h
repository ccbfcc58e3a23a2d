// open_tensor_file(): picks the reader by looking at the path and the bytes, never the extension:
// a directory is a diffusers folder, "GGUF" is GGUF, a zip ("PK\x03\x04") or a bare pickle is a
// PyTorch checkpoint, anything else must be safetensors (whose reader validates it fully).
#pragma once

#include <string>

#include "io/tensor_file.h"

namespace sdc::io {

// The format `path` holds, judged by content; sdc::Error for a missing path, an empty file or
// something that is neither a file nor a directory.
FileFormat detect_format(const std::string& path);

// Reads `path` with the reader detect_format() picks.
TensorFile open_tensor_file(const std::string& path);

}  // namespace sdc::io
