// Helpers for model-layer tests: synthetic weight files made from the fixtures or from zeros.
#pragma once

#include <functional>
#include <string>

#include "common/fixtures.h"
#include "common/tensor.h"
#include "io/safetensors.h"

namespace sdc::test {

inline TensorRef zeros(const Shape& shape, DType dtype = DType::F32) {
  return TensorRef::from_f32(std::vector<float>(size_t(shape_numel(shape)), 0.0f), shape, dtype);
}

// The tensors of a fixture whose names pass `keep`, renamed by `rename` (identity by default).
inline WeightMap fixture_subset(
    const std::string& fixture, const std::function<bool(const std::string&)>& keep,
    const std::function<std::string(const std::string&)>& rename = [](const std::string& n) {
      return n;
    }) {
  static std::map<std::string, io::TensorFile> cache;
  auto it = cache.find(fixture);
  if (it == cache.end()) it = cache.emplace(fixture, io::read_safetensors(tiny(fixture))).first;
  WeightMap out;
  for (const auto& [n, t] : it->second.tensors.all())
    if (keep(n)) out.set(rename(n), t);
  return out;
}

inline bool starts_with(const std::string& s, const std::string& p) {
  return s.rfind(p, 0) == 0;
}

}  // namespace sdc::test
