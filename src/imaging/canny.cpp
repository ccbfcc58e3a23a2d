// Canny edges with OpenCV's exact rules (see canny.h): Sobel, per-pixel channel choice,
// non-maximum suppression, hysteresis; and the optional Gaussian blur before them.
#include "imaging/canny.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <utility>
#include <vector>

#include "common/error.h"

namespace sdc::imaging {

namespace {

// Index of `i` in [0, n) reflected without repeating the edge (OpenCV's BORDER_REFLECT_101).
int reflect101(int i, int n) {
  if (n == 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
  return i;
}

}  // namespace

io::Image gaussian_blur(const io::Image& image, float sigma, int taps_radius) {
  if (!std::isfinite(sigma))
    throw UsageError("", "blur sigma", "a finite number", "NaN or infinity");
  if (sigma <= 0.0f) return image;
  const int w = image.width, h = image.height;
  const int radius =
      taps_radius > 0 ? taps_radius : std::max(1, int(std::lround(3.0 * double(sigma))));
  std::vector<float> k(size_t(2 * radius + 1));
  double sum = 0;
  for (int i = -radius; i <= radius; ++i) {
    const double v = std::exp(-double(i) * double(i) / (2.0 * double(sigma) * double(sigma)));
    k[size_t(i + radius)] = float(v);
    sum += v;
  }
  for (float& v : k) v = float(double(v) / sum);
  // Rows, then columns, both in f32; one rounding at the end. One pass along x or y with
  // reflected borders:
  auto pass = [&](const std::vector<float>& src, bool along_x) {
    std::vector<float> dst(src.size());
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int c = 0; c < 3; ++c) {
          float acc = 0;
          for (int i = -radius; i <= radius; ++i) {
            const int sx = along_x ? reflect101(x + i, w) : x;
            const int sy = along_x ? y : reflect101(y + i, h);
            acc +=
                k[size_t(i + radius)] * src[(size_t(sy) * size_t(w) + size_t(sx)) * 3 + size_t(c)];
          }
          dst[(size_t(y) * size_t(w) + size_t(x)) * 3 + size_t(c)] = acc;
        }
    return dst;
  };
  const std::vector<float> blurred =
      pass(pass(std::vector<float>(image.rgb.begin(), image.rgb.end()), true), false);
  io::Image out = image;
  for (size_t i = 0; i < blurred.size(); ++i)
    out.rgb[i] = uint8_t(std::clamp(std::lround(blurred[i]), 0L, 255L));
  return out;
}

io::Image canny(const io::Image& image, float low_threshold, float high_threshold) {
  const int w = image.width, h = image.height;
  if (w <= 0 || h <= 0 || image.rgb.size() != size_t(w) * size_t(h) * 3)
    throw Error("", "canny input", "a non-empty RGB image",
                std::to_string(w) + "x" + std::to_string(h) + " with " +
                    std::to_string(image.rgb.size()) + " bytes");
  if (!std::isfinite(low_threshold) || !std::isfinite(high_threshold))
    throw UsageError("", "canny thresholds", "finite numbers", "NaN or infinity");
  if (low_threshold > high_threshold) std::swap(low_threshold, high_threshold);
  const int64_t low = int64_t(std::floor(double(low_threshold)));
  const int64_t high = int64_t(std::floor(double(high_threshold)));

  // Sobel with replicated borders; keep the channel of largest L1 magnitude.
  const size_t n = size_t(w) * size_t(h);
  std::vector<int> gx(n), gy(n);
  // Magnitudes with a one-pixel ring of zeros, so that suppression at the border compares with 0.
  const int mw = w + 2;
  std::vector<int> mag(size_t(mw) * size_t(h + 2), 0);
  auto at = [&](int x, int y, int c) {
    x = x < 0 ? 0 : x >= w ? w - 1 : x;
    y = y < 0 ? 0 : y >= h ? h - 1 : y;
    return int(image.rgb[(size_t(y) * size_t(w) + size_t(x)) * 3 + size_t(c)]);
  };
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      int best_m = -1, best_dx = 0, best_dy = 0;
      for (int c = 0; c < 3; ++c) {
        const int dx = (at(x + 1, y - 1, c) - at(x - 1, y - 1, c)) +
                       2 * (at(x + 1, y, c) - at(x - 1, y, c)) +
                       (at(x + 1, y + 1, c) - at(x - 1, y + 1, c));
        const int dy = (at(x - 1, y + 1, c) - at(x - 1, y - 1, c)) +
                       2 * (at(x, y + 1, c) - at(x, y - 1, c)) +
                       (at(x + 1, y + 1, c) - at(x + 1, y - 1, c));
        const int m = std::abs(dx) + std::abs(dy);
        if (m > best_m) best_m = m, best_dx = dx, best_dy = dy;
      }
      const size_t i = size_t(y) * size_t(w) + size_t(x);
      gx[i] = best_dx;
      gy[i] = best_dy;
      mag[size_t(y + 1) * size_t(mw) + size_t(x + 1)] = best_m;
    }

  // Non-maximum suppression with OpenCV's fixed-point direction test.
  constexpr int kShift = 15;
  const int64_t tg22 = int64_t(0.4142135623730950488016887242097 * (1 << kShift) + 0.5);
  enum : uint8_t { kNone = 0, kWeak = 1, kStrong = 2 };
  std::vector<uint8_t> state(n, kNone);
  std::vector<int> stack;
  for (int y = 0; y < h; ++y) {
    const int* prev = &mag[size_t(y) * size_t(mw) + 1];  // row y − 1, column 0 at index 0
    const int* cur = prev + mw;
    const int* next = cur + mw;
    for (int x = 0; x < w; ++x) {
      const int m = cur[x];
      if (m <= low) continue;
      const size_t i = size_t(y) * size_t(w) + size_t(x);
      const int xs = gx[i], ys = gy[i];
      const int64_t ax = std::abs(xs), ay = int64_t(std::abs(ys)) << kShift;
      const int64_t tg22x = ax * tg22;
      bool maximum = false;
      if (ay < tg22x) {
        maximum = m > cur[x - 1] && m >= cur[x + 1];  // gradient ~horizontal
      } else if (ay > tg22x + (ax << (kShift + 1))) {
        maximum = m > prev[x] && m >= next[x];  // gradient ~vertical
      } else {
        const int s = (xs ^ ys) < 0 ? -1 : 1;  // diagonal
        maximum = m > prev[x - s] && m > next[x + s];
      }
      if (!maximum) continue;
      if (m > high) {
        state[i] = kStrong;
        stack.push_back(int(i));
      } else {
        state[i] = kWeak;
      }
    }
  }

  // Hysteresis: grow strong edges through 8-connected candidates.
  while (!stack.empty()) {
    const int i = stack.back();
    stack.pop_back();
    const int x = i % w, y = i / w;
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) {
        const int nx = x + dx, ny = y + dy;
        if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
        const size_t j = size_t(ny) * size_t(w) + size_t(nx);
        if (state[j] == kWeak) {
          state[j] = kStrong;
          stack.push_back(int(j));
        }
      }
  }

  io::Image out(w, h);
  for (size_t i = 0; i < n; ++i)
    if (state[i] == kStrong) out.rgb[i * 3] = out.rgb[i * 3 + 1] = out.rgb[i * 3 + 2] = 255;
  return out;
}

}  // namespace sdc::imaging
