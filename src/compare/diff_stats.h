// How far two outputs differ: for tensors, max and mean absolute difference, the fixtures' metric
// max|a - b| / max|a|, the relative L2 error ||a - b|| / ||a|| and cosine similarity; for 8-bit
// images, max and mean level difference and
// PSNR.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sdc::compare {

struct TensorDiff {
  double max_abs = 0, mean_abs = 0;
  double rel_max = 0;  // max|a - b| / max|a| (0 when both are all zero)
  double rel_l2 = 0;   // ||a - b|| / ||a|| (||a - b|| when a is all zero)
  double cosine = 1;   // of the flattened tensors (1 when both are all zero)
  bool identical() const { return max_abs == 0; }
};

// `a` is the reference side. Throws sdc::Error if the sizes differ.
TensorDiff tensor_diff(const float* a, const float* b, size_t n);
TensorDiff tensor_diff(const std::vector<float>& a, const std::vector<float>& b);

struct ImageDiff {
  int max_level = 0;      // largest |a - b| over 8-bit channel values
  double mean_level = 0;  // mean |a - b|
  double psnr_db = 0;     // 10 log10(255^2 / MSE); infinity when identical
};

ImageDiff image_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b);

}  // namespace sdc::compare
