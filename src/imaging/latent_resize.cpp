// Bilinear latent resize (torch's upsample_bilinear2d without align_corners).
#include "imaging/latent_resize.h"

#include <algorithm>
#include <string>

#include "common/error.h"

namespace sdc::imaging {
namespace {

struct Tap {
  int i0, i1;
  float l0, l1;
};

std::vector<Tap> taps(int in, int out) {
  const float scale = float(in) / float(out);
  std::vector<Tap> t(static_cast<size_t>(out));
  for (int d = 0; d < out; ++d) {
    const float src = std::max((float(d) + 0.5f) * scale - 0.5f, 0.0f);
    const int i0 = std::min(int(src), in - 1);
    const int i1 = std::min(i0 + 1, in - 1);
    const float l1 = src - float(i0);
    t[size_t(d)] = {i0, i1, 1.0f - l1, l1};
  }
  return t;
}

}  // namespace

std::vector<float> resize_latents_bilinear(std::span<const float> x, int n, int c, int h, int w,
                                           int out_h, int out_w) {
  if (n <= 0 || c <= 0 || h <= 0 || w <= 0 || out_h <= 0 || out_w <= 0 ||
      x.size() != size_t(n) * size_t(c) * size_t(h) * size_t(w))
    throw Error("latents", "resize", "a positive NCHW shape matching the data",
                std::to_string(x.size()) + " values for " + std::to_string(n) + "x" +
                    std::to_string(c) + "x" + std::to_string(h) + "x" + std::to_string(w));
  const std::vector<Tap> ty = taps(h, out_h), tx = taps(w, out_w);
  std::vector<float> out(size_t(n) * size_t(c) * size_t(out_h) * size_t(out_w));
  for (size_t plane = 0; plane < size_t(n) * size_t(c); ++plane) {
    const float* src = x.data() + plane * size_t(h) * size_t(w);
    float* dst = out.data() + plane * size_t(out_h) * size_t(out_w);
    for (int y = 0; y < out_h; ++y) {
      const Tap& a = ty[size_t(y)];
      const float* r0 = src + size_t(a.i0) * size_t(w);
      const float* r1 = src + size_t(a.i1) * size_t(w);
      for (int xx = 0; xx < out_w; ++xx) {
        const Tap& b = tx[size_t(xx)];
        dst[size_t(y) * size_t(out_w) + size_t(xx)] =
            a.l0 * (b.l0 * r0[b.i0] + b.l1 * r0[b.i1]) + a.l1 * (b.l0 * r1[b.i0] + b.l1 * r1[b.i1]);
      }
    }
  }
  return out;
}

}  // namespace sdc::imaging
