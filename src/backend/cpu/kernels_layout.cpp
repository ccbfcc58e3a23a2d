// Layout moves and embeddings: nearest upsampling (and the phase interleave of a fused
// upsample-conv), concat/slice on the channel axis, the
// sinusoidal timestep embedding and token embedding lookups.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "backend/cpu/kernels.h"
#include "backend/cpu/kernels_internal.h"
#include "common/error.h"

namespace sdc::cpu {

void upsample_nearest(const float* x, void* y, DType ydt, int64_t N, int64_t H, int64_t W,
                      int64_t C, int64_t Ho, int64_t Wo) {
  // PyTorch: same size -> identity, exactly 2x -> dst >> 1, else floor(dst * (float)in / out).
  auto src_index = [](int64_t dst, int64_t in, int64_t out) -> int64_t {
    if (in == out) return dst;
    if (out == 2 * in) return dst >> 1;
    const float scale = float(in) / float(out);
    return std::min(int64_t(std::floor(float(dst) * scale)), in - 1);
  };
  const int64_t rows = N * Ho;
  const bool bf16 = ydt == DType::BF16;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = r / Ho, oy = r % Ho;
    const float* src_row = x + (n * H + src_index(oy, H, Ho)) * W * C;
    for (int64_t ox = 0; ox < Wo; ++ox) {
      const float* src = src_row + src_index(ox, W, Wo) * C;
      if (bf16)
        convert_span_to_bf16(src, static_cast<uint16_t*>(y) + (r * Wo + ox) * C, C);
      else
        std::memcpy(static_cast<float*>(y) + (r * Wo + ox) * C, src, size_t(C) * sizeof(float));
    }
  }
}

void interleave_upsample_phases(const void* t, void* y, DType dt, int64_t N, int64_t H, int64_t W,
                                int64_t C) {
  const size_t es = dtype_size(dt), row = size_t(C) * es;
  const int64_t Ho = 2 * H, Wo = 2 * W;
  const auto* src = static_cast<const uint8_t*>(t);
  auto* dst = static_cast<uint8_t*>(y);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < N * Ho; ++r) {
    const int64_t n = r / Ho, oy = r % Ho, py = oy & 1;
    const uint8_t* trow = src + ((n * (H + 1) + (oy >> 1) + py) * (W + 1)) * 4 * row;
    uint8_t* yrow = dst + r * Wo * row;
    for (int64_t ox = 0; ox < Wo; ++ox) {
      const int64_t px = ox & 1;
      std::memcpy(yrow + ox * row, trow + ((ox >> 1) + px) * 4 * row + (2 * py + px) * row, row);
    }
  }
}

void concat_last(const float* a, const float* b, float* y, int64_t rows, int64_t Ca, int64_t Cb) {
#pragma omp parallel for schedule(static) if (rows * (Ca + Cb) > 16384)
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(y + r * (Ca + Cb), a + r * Ca, size_t(Ca) * sizeof(float));
    std::memcpy(y + r * (Ca + Cb) + Ca, b + r * Cb, size_t(Cb) * sizeof(float));
  }
}

void slice_last(const float* x, float* y, int64_t rows, int64_t C, int64_t begin, int64_t end) {
  const int64_t w = end - begin;
#pragma omp parallel for schedule(static) if (rows * w > 16384)
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(y + r * w, x + r * C + begin, size_t(w) * sizeof(float));
}

void timestep_embedding(const float* t, float* y, int64_t N, int64_t dim, bool flip, float shift) {
  // Same f32 operation order as diffusers: exponent = -ln(10000) * i / (half - shift),
  // arg = t * exp(exponent); sin and cos of the f32 argument.
  const int64_t half = dim / 2;
  const float neg_log = -std::log(10000.f);
  for (int64_t n = 0; n < N; ++n) {
    float* row = y + n * dim;
    for (int64_t i = 0; i < half; ++i) {
      const float exponent = (neg_log * float(i)) / (float(half) - shift);
      const float arg = t[n] * std::exp(exponent);
      const float s = float(std::sin(double(arg))), c = float(std::cos(double(arg)));
      row[flip ? half + i : i] = s;
      row[flip ? i : half + i] = c;
    }
  }
}

void embedding(const int32_t* ids, const void* table, DType table_dtype, float* y, int64_t n,
               int64_t V, int64_t C) {
  for (int64_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= V)
      throw Error("embedding", "id at position " + std::to_string(i),
                  "a value in [0, " + std::to_string(V) + ")", std::to_string(ids[i]));
  const size_t row = size_t(C) * dtype_size(table_dtype);
  for (int64_t i = 0; i < n; ++i)
    convert_to_f32(table_dtype, static_cast<const uint8_t*>(table) + size_t(ids[i]) * row,
                   y + i * C, size_t(C));
}

}  // namespace sdc::cpu
