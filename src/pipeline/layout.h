// NCHW <-> NHWC copies at the pipeline/graph boundary. Latents live in NCHW in the pipeline (the
// order torch.randn fills and --save-latents writes); graphs compute in NHWC.
#pragma once

#include <cstdint>

namespace sdc::pipeline {

inline void nchw_to_nhwc(const float* src, float* dst, int64_t n, int64_t c, int64_t h, int64_t w) {
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < h * w; ++i)
        dst[(b * h * w + i) * c + ch] = src[(b * c + ch) * h * w + i];
}

inline void nhwc_to_nchw(const float* src, float* dst, int64_t n, int64_t c, int64_t h, int64_t w) {
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < h * w; ++i)
        dst[(b * c + ch) * h * w + i] = src[(b * h * w + i) * c + ch];
}

}  // namespace sdc::pipeline
