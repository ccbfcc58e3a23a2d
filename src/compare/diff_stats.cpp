// Difference statistics, accumulated in double.
#include "compare/diff_stats.h"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "common/error.h"

namespace sdc::compare {

TensorDiff tensor_diff(const float* a, const float* b, size_t n) {
  TensorDiff d;
  double sum_abs = 0, max_ref = 0, dot = 0, na = 0, nb = 0, nd = 0;
  for (size_t i = 0; i < n; ++i) {
    const double x = a[i], y = b[i], e = std::fabs(x - y);
    d.max_abs = std::max(d.max_abs, e);
    sum_abs += e;
    nd += e * e;
    max_ref = std::max(max_ref, std::fabs(x));
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  d.mean_abs = n ? sum_abs / double(n) : 0;
  d.rel_max = max_ref > 0 ? d.max_abs / max_ref : d.max_abs;
  d.rel_l2 = na > 0 ? std::sqrt(nd / na) : std::sqrt(nd);
  d.cosine = na > 0 && nb > 0 ? dot / std::sqrt(na * nb) : (na == nb ? 1.0 : 0.0);
  return d;
}

TensorDiff tensor_diff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size())
    throw Error("compare", "output size", std::to_string(a.size()) + " values",
                std::to_string(b.size()));
  return tensor_diff(a.data(), b.data(), a.size());
}

ImageDiff image_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  if (a.size() != b.size())
    throw Error("compare", "image size", std::to_string(a.size()) + " bytes",
                std::to_string(b.size()));
  ImageDiff d;
  double sum = 0, sq = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const int e = std::abs(int(a[i]) - int(b[i]));
    d.max_level = std::max(d.max_level, e);
    sum += e;
    sq += double(e) * e;
  }
  const double n = a.empty() ? 1.0 : double(a.size());
  d.mean_level = sum / n;
  d.psnr_db = sq == 0 ? std::numeric_limits<double>::infinity()
                      : 10.0 * std::log10(255.0 * 255.0 / (sq / n));
  return d;
}

}  // namespace sdc::compare
