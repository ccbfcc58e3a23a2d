// NCHW <-> NHWC copies: the plans keep image-like tensors as [N,H,W,C] for the kernels, while
// callers speak NCHW (the order torch.randn fills and --save-latents writes). Plan's
// set_input_nchw / read_output_nchw use these, so the layout stays the backend's business.
#pragma once

#include <cstdint>

namespace sdc::cpu {

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

}  // namespace sdc::cpu
