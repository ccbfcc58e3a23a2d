// TensorRef and WeightMap: named, typed, shaped views on weight bytes. The bytes usually live in
// a memory-mapped file; `owner` keeps whatever backs them alive (a mapping, a merged buffer).
// Every layer above io passes weights around as a WeightMap keyed by the original LDM names.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/dtype.h"

namespace sdc {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);  // "[320, 4, 3, 3]"
int64_t shape_numel(const Shape& s);

// Drops this process's resident pages of [data, data + bytes), whole pages around it, from a
// read-only file mapping (they are read again from the page cache on the next access). Only for
// file-backed bytes: on anonymous memory the same advice would zero them. Advice only.
void release_file_pages(const void* data, size_t bytes);

// While one is alive, this thread's release_file_pages calls are collected, and made when it
// ends as one madvise per run of adjacent or overlapping pages. Each madvise that unmaps pages
// flushes the other cores' TLBs; dropping a 512x512 UNet plan's 777 file-backed weights one call
// each took ~58 ms on the README's 2-core VM, on the path between the last step and the decode.
// Batches nest: the outermost one releases.
class FilePageReleaseBatch {
 public:
  FilePageReleaseBatch();
  ~FilePageReleaseBatch();
  FilePageReleaseBatch(const FilePageReleaseBatch&) = delete;
  FilePageReleaseBatch& operator=(const FilePageReleaseBatch&) = delete;

 private:
  std::vector<std::pair<uintptr_t, uintptr_t>> ranges_;  // whole pages, [begin, end)
  bool nested_ = false;  // inside another batch, which releases what this one collects
  friend void release_file_pages(const void* data, size_t bytes);
};

struct TensorRef {
  DType dtype = DType::F32;
  Shape shape;
  const void* data = nullptr;
  size_t nbytes = 0;
  std::shared_ptr<const void> owner;  // keeps `data` alive
  std::string source;                 // file it came from, for error messages
  // `data` lies in a read-only mapping of a file: its pages can be dropped from this process's
  // memory at any time and are read again from the file (page cache) on the next access.
  bool file_backed = false;

  int64_t numel() const { return shape_numel(shape); }
  // Drops the resident pages of a file-backed tensor (nothing for other tensors) once a consumer
  // has made its own copy (packed weights, a written file), so that the source and the copy are
  // not both counted in memory. `data` stays valid: the bytes are the same when read again.
  void release_pages() const;
  // The values as f32 (converted from F16/BF16/F64). Throws for non-float tensors.
  std::vector<float> to_f32() const;
  // A new TensorRef owning a copy of `values` in `dtype` (F32/F16/BF16).
  static TensorRef from_f32(const std::vector<float>& values, Shape shape, DType dtype,
                            std::string source = {});
};

// Weights by name. Lookups that fail throw sdc::Error naming the key and the source.
class WeightMap {
 public:
  void set(const std::string& name, TensorRef t) { map_[name] = std::move(t); }
  bool contains(const std::string& name) const { return map_.count(name) != 0; }
  const TensorRef& get(const std::string& name) const;
  // get() and check the shape: error "key: expected [..], found [..]".
  const TensorRef& get(const std::string& name, const Shape& expected) const;
  const TensorRef* find(const std::string& name) const;
  void erase(const std::string& name) { map_.erase(name); }
  size_t size() const { return map_.size(); }
  const std::map<std::string, TensorRef>& all() const { return map_; }
  std::map<std::string, TensorRef>& all() { return map_; }
  // Names starting with `prefix`.
  std::vector<std::string> names_with_prefix(const std::string& prefix) const;
  std::string description;  // what these weights are, e.g. "model.safetensors (UNet)"

 private:
  std::map<std::string, TensorRef> map_;
};

}  // namespace sdc
