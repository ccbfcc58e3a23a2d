// The phase kernels of a 3x3 convolution over a 2x nearest-upsampled image (upsample_conv.h).
#include "backend/cpu/upsample_conv.h"

#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/kernel_transform.h"
#include "common/dtype.h"

namespace sdc::cpu {

namespace {
TensorRef f32_tensor(std::vector<float> values, Shape shape, const std::string& source) {
  auto buf = std::make_shared<std::vector<float>>(std::move(values));
  TensorRef t;
  t.dtype = DType::F32;
  t.shape = std::move(shape);
  t.data = buf->data();
  t.nbytes = buf->size() * sizeof(float);
  t.owner = buf;
  t.source = source;
  return t;
}
}  // namespace

void upsample_phase_kernel(const float k[9], int py, int px, float g[4]) {
  // Per kernel row r, the sums over kx for tap b of phase px.
  float col[3][2];
  for (int r = 0; r < 3; ++r) {
    col[r][0] = px == 0 ? k[r * 3] : k[r * 3] + k[r * 3 + 1];          // {k0} | {k0 + k1}
    col[r][1] = px == 0 ? k[r * 3 + 1] + k[r * 3 + 2] : k[r * 3 + 2];  // {k1 + k2} | {k2}
  }
  for (int b = 0; b < 2; ++b) {
    g[b] = py == 0 ? col[0][b] : col[0][b] + col[1][b];      // tap a 0: {k0} | {k0 + k1}
    g[2 + b] = py == 0 ? col[1][b] + col[2][b] : col[2][b];  // tap a 1: {k1 + k2} | {k2}
  }
}

TensorRef upsample_phase_weights(const TensorRef& w) {
  check_3x3_kernel(w, "upsample convolution weight");
  const int64_t Co = w.shape[0], Ci = w.shape[1];
  thread_local std::vector<float> staging;
  staging.resize(size_t(16 * Co * Ci));
  float* out = staging.data();
  for_each_3x3_kernel(w, [out, Co, Ci](int64_t o, int64_t i, const float* k) {
    for (int p = 0; p < 4; ++p)
      upsample_phase_kernel(k, p / 2, p % 2, out + ((p * Co + o) * Ci + i) * 4);
  });
  return staged_tensor(staging, {4 * Co, Ci, 2, 2}, w.source);
}

TensorRef upsample_phase_bias(const TensorRef& b) {
  const std::vector<float> v = b.to_f32();
  std::vector<float> out;
  out.reserve(4 * v.size());
  for (int p = 0; p < 4; ++p) out.insert(out.end(), v.begin(), v.end());
  const int64_t n = int64_t(out.size());
  return f32_tensor(std::move(out), {n}, b.source);
}

}  // namespace sdc::cpu
