// MappedFile: a read-only memory mapping of a whole file, shared by every tensor that points
// into it. Zero-copy loading of safetensors and GGUF rests on this.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/tensor.h"

namespace sdc::io {

class MappedFile {
 public:
  // Maps `path`; throws sdc::Error for a missing, unreadable or special file. An empty file maps
  // to size() == 0 and data() == nullptr.
  static std::shared_ptr<const MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Marks the tensors whose bytes lie inside this mapping as file-backed (TensorRef::file_backed):
  // their pages may be released and read again. Copies made by a parser are left alone.
  void mark_file_backed(WeightMap& tensors) const;

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

}  // namespace sdc::io
