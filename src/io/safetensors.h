// Safetensors reading (memory-mapped, zero-copy, header fully validated) and writing.
#pragma once

#include <string>

#include "io/tensor_file.h"

namespace sdc::io {

// Reads `path`. Every header field is checked before use: header length inside the file, valid
// JSON, known dtypes, shape x dtype size == byte span, spans inside the data area and disjoint.
TensorFile read_safetensors(const std::string& path);

// Parses a safetensors image already in memory (used by the reader and by the fuzzer). `owner`
// keeps `data` alive in the returned tensors.
TensorFile parse_safetensors(const uint8_t* data, size_t size, const std::string& path,
                             std::shared_ptr<const void> owner);

// Writes `tensors` (and string metadata) atomically: temp file, fsync, rename.
void write_safetensors(const std::string& path, const WeightMap& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace sdc::io
