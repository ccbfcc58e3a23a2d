// A1111's ImageRNG: subseed slerp, seed resize, per-image generators.
#include "sampling/variation_noise.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.h"

namespace sdc::sampling {
namespace {

// Python's // on ints: rounds towards minus infinity ((8 - 11) // 2 == -2).
int floor_div(int a, int b) {
  const int q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

}  // namespace

VariationSeeds batch_variation_seeds(int64_t seed, int64_t subseed, double strength,
                                     int resize_from_w, int resize_from_h, int first_index,
                                     int batch_size) {
  VariationSeeds v;
  v.strength = strength;
  v.resize_from_w = resize_from_w;
  v.resize_from_h = resize_from_h;
  for (int i = 0; i < batch_size; ++i) {
    const int64_t index = int64_t(first_index) + i;
    v.seeds.push_back(seed + (strength == 0 ? index : 0));
    if (strength != 0) v.subseeds.push_back(subseed + index);
  }
  return v;
}

std::vector<float> a1111_slerp(float val, std::span<const float> low, std::span<const float> high,
                               int channels, int height, int width) {
  const size_t n = size_t(channels) * size_t(height) * size_t(width);
  if (low.size() != n || high.size() != n)
    throw Error("slerp", "tensor size", std::to_string(n), std::to_string(low.size()));
  // One unit vector per (channel, column): torch.norm(x, dim=1) over H of [C, H, W].
  const size_t cols = size_t(channels) * size_t(width);
  std::vector<float> dot(cols);
  auto at = [&](int c, int y, int x) {
    return (size_t(c) * size_t(height) + size_t(y)) * size_t(width) + size_t(x);
  };
  for (int c = 0; c < channels; ++c)
    for (int x = 0; x < width; ++x) {
      double nl = 0, nh = 0;
      for (int y = 0; y < height; ++y) {
        nl += double(low[at(c, y, x)]) * low[at(c, y, x)];
        nh += double(high[at(c, y, x)]) * high[at(c, y, x)];
      }
      const float norm_l = float(std::sqrt(nl)), norm_h = float(std::sqrt(nh));
      float d = 0;
      for (int y = 0; y < height; ++y)
        d += (low[at(c, y, x)] / norm_l) * (high[at(c, y, x)] / norm_h);
      dot[size_t(c) * size_t(width) + size_t(x)] = d;
    }
  double mean = 0;
  for (float d : dot) mean += d;
  mean /= double(cols);
  std::vector<float> out(n);
  if (float(mean) > 0.9995f) {
    // A1111's linear branch, weights as it writes them: low·val + high·(1 − val).
    for (size_t i = 0; i < n; ++i) out[i] = low[i] * val + high[i] * (1.0f - val);
    return out;
  }
  for (int c = 0; c < channels; ++c)
    for (int x = 0; x < width; ++x) {
      const float omega = std::acos(dot[size_t(c) * size_t(width) + size_t(x)]);
      const float so = std::sin(omega);
      const float wl = std::sin((1.0f - val) * omega) / so, wh = std::sin(val * omega) / so;
      for (int y = 0; y < height; ++y) {
        const size_t i = at(c, y, x);
        out[i] = wl * low[i] + wh * high[i];
      }
    }
  return out;
}

VariationNoise::VariationNoise(int channels, int height, int width, VariationSeeds seeds,
                               const GeneratorFactory& make_generator)
    : c_(channels),
      h_(height),
      w_(width),
      per_image_(size_t(channels) * size_t(height) * size_t(width)),
      seeds_(std::move(seeds)),
      make_(make_generator) {
  if (seeds_.uses_subseed() && seeds_.subseeds.size() != seeds_.seeds.size())
    throw UsageError("", "--subseed", std::to_string(seeds_.seeds.size()) + " subseeds",
                     std::to_string(seeds_.subseeds.size()));
  if ((seeds_.resize_from_w > 0) != (seeds_.resize_from_h > 0) ||
      (seeds_.uses_resize() && (seeds_.resize_from_w < 8 || seeds_.resize_from_h < 8)))
    throw UsageError(
        "", "--seed-resize-from", "a width and height of at least 8 pixels",
        std::to_string(seeds_.resize_from_w) + " " + std::to_string(seeds_.resize_from_h));
  for (int64_t s : seeds_.seeds) gens_.push_back(make_(uint64_t(s)));
}

std::vector<float> VariationNoise::first() {
  const bool resize =
      seeds_.uses_resize() && (seeds_.resize_from_h / 8 != h_ || seeds_.resize_from_w / 8 != w_);
  const int nh = resize ? seeds_.resize_from_h / 8 : h_,
            nw = resize ? seeds_.resize_from_w / 8 : w_;
  const size_t noise_n = size_t(c_) * size_t(nh) * size_t(nw);
  std::vector<float> out(batch() * per_image_);
  for (size_t i = 0; i < batch(); ++i) {
    std::vector<float> sub;
    if (seeds_.uses_subseed()) sub = make_(uint64_t(seeds_.subseeds[i]))->randn(noise_n);
    // The seed's own noise comes from g_i only when no resize is involved (A1111 draws a
    // differently shaped noise from a fresh generator and leaves g_i for the full-size draw).
    std::vector<float> noise =
        resize ? make_(uint64_t(seeds_.seeds[i]))->randn(noise_n) : gens_[i]->randn(noise_n);
    if (!sub.empty()) noise = a1111_slerp(float(seeds_.strength), noise, sub, c_, nh, nw);
    float* dst = out.data() + i * per_image_;
    if (!resize) {
      std::copy(noise.begin(), noise.end(), dst);
      continue;
    }
    gens_[i]->randn(dst, per_image_);
    const int dx = floor_div(w_ - nw, 2), dy = floor_div(h_ - nh, 2);
    const int w = dx >= 0 ? nw : nw + 2 * dx, h = dy >= 0 ? nh : nh + 2 * dy;
    const int tx = std::max(dx, 0), ty = std::max(dy, 0), sx = std::max(-dx, 0),
              sy = std::max(-dy, 0);
    for (int c = 0; c < c_; ++c)
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
          dst[(size_t(c) * size_t(h_) + size_t(ty + y)) * size_t(w_) + size_t(tx + x)] =
              noise[(size_t(c) * size_t(nh) + size_t(sy + y)) * size_t(nw) + size_t(sx + x)];
  }
  return out;
}

void VariationNoise::next(std::span<float> out) {
  if (out.size() != batch() * per_image_)
    throw Error("noise", "size", std::to_string(batch() * per_image_), std::to_string(out.size()));
  for (size_t i = 0; i < batch(); ++i) gens_[i]->randn(out.data() + i * per_image_, per_image_);
}

}  // namespace sdc::sampling
