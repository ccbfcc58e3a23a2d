// Latent -> RGB preview by a fixed 4x3 linear map (values A1111 ships for SD1.x latents).
#include "pipeline/latent_preview.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace sdc::pipeline {
namespace {
// Row: latent channel; column: R, G, B contribution (output in about [-1, 1]).
constexpr float kLatentToRgb[4][3] = {
    {0.298f, 0.207f, 0.208f},
    {0.187f, 0.286f, 0.173f},
    {-0.158f, 0.189f, 0.264f},
    {-0.184f, -0.271f, -0.473f},
};
}  // namespace

io::Image preview_latents(std::span<const float> latents, int h, int w) {
  const size_t plane = size_t(h) * size_t(w);
  if (h <= 0 || w <= 0 || latents.size() != 4 * plane)
    throw Error("preview", "latents", "4 x " + std::to_string(h) + " x " + std::to_string(w),
                std::to_string(latents.size()) + " values");
  io::Image img(w, h);
  for (size_t i = 0; i < plane; ++i) {
    for (int c = 0; c < 3; ++c) {
      float v = 0;
      for (int l = 0; l < 4; ++l) v += latents[size_t(l) * plane + i] * kLatentToRgb[l][c];
      const float unit = std::clamp((v + 1.0f) * 0.5f, 0.0f, 1.0f);
      img.rgb[i * 3 + size_t(c)] = uint8_t(std::lround(unit * 255.0f));
    }
  }
  return img;
}

}  // namespace sdc::pipeline
