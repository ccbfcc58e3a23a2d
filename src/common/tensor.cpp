// TensorRef conversions and WeightMap lookups.
#include "common/tensor.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>

#include "common/error.h"

namespace sdc {

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::vector<float> TensorRef::to_f32() const {
  std::vector<float> out(static_cast<size_t>(numel()));
  convert_to_f32(dtype, data, out.data(), out.size());
  return out;
}

namespace {
thread_local FilePageReleaseBatch* current_batch = nullptr;
}  // namespace

void release_file_pages(const void* data, size_t bytes) {
  if (!data || bytes == 0) return;
  // Whole pages around the bytes: neighbours' bytes on the edge pages are file-backed too and
  // come back the same way. Advice only: a failure leaves the pages resident, nothing else.
  static const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(data) & ~(page - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes + page - 1) & ~(page - 1);
  if (current_batch) {
    current_batch->ranges_.emplace_back(begin, end);
    return;
  }
  madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

FilePageReleaseBatch::FilePageReleaseBatch() : nested_(current_batch != nullptr) {
  if (!nested_) current_batch = this;
}

FilePageReleaseBatch::~FilePageReleaseBatch() {
  if (nested_) return;  // the outermost batch releases everything collected
  current_batch = nullptr;
  std::sort(ranges_.begin(), ranges_.end());
  for (size_t i = 0; i < ranges_.size();) {
    auto [begin, end] = ranges_[i];
    for (++i; i < ranges_.size() && ranges_[i].first <= end; ++i)
      end = std::max(end, ranges_[i].second);
    madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
  }
}

void TensorRef::release_pages() const {
  if (file_backed) release_file_pages(data, nbytes);
}

TensorRef TensorRef::from_f32(const std::vector<float>& values, Shape shape, DType dtype,
                              std::string source) {
  if (int64_t(values.size()) != shape_numel(shape))
    throw Error(source, "tensor data", std::to_string(shape_numel(shape)) + " values",
                std::to_string(values.size()));
  auto buf = std::make_shared<std::vector<uint8_t>>(values.size() * dtype_size(dtype));
  convert_from_f32(dtype, values.data(), buf->data(), values.size());
  TensorRef t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.data = buf->data();
  t.nbytes = buf->size();
  t.owner = buf;
  t.source = std::move(source);
  return t;
}

const TensorRef* WeightMap::find(const std::string& name) const {
  auto it = map_.find(name);
  return it == map_.end() ? nullptr : &it->second;
}

const TensorRef& WeightMap::get(const std::string& name) const {
  if (const TensorRef* t = find(name)) return *t;
  throw Error(description, name, "a tensor of this name", "none");
}

const TensorRef& WeightMap::get(const std::string& name, const Shape& expected) const {
  const TensorRef& t = get(name);
  if (t.shape != expected)
    throw Error(t.source.empty() ? description : t.source, name, "shape " + shape_str(expected),
                shape_str(t.shape));
  return t;
}

std::vector<std::string> WeightMap::names_with_prefix(const std::string& prefix) const {
  std::vector<std::string> out;
  for (auto it = map_.lower_bound(prefix); it != map_.end() && it->first.rfind(prefix, 0) == 0;
       ++it)
    out.push_back(it->first);
  return out;
}

}  // namespace sdc
