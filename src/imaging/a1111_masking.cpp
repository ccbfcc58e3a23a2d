// A1111's inpainting image operations with PIL's and OpenCV's integer conventions.
#include "imaging/a1111_masking.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "common/error.h"
#include "imaging/image_ops.h"

namespace sdc::imaging {
namespace {

uint8_t grey_of(const io::Image& g, int x, int y) {
  return g.pixel(x, y)[0];
}
void set_grey(io::Image& g, int x, int y, uint8_t v) {
  uint8_t* p = g.pixel(x, y);
  p[0] = p[1] = p[2] = v;
}
void check_grey_size(const io::Image& a, const io::Image& b, const char* what) {
  if (a.width != b.width || a.height != b.height)
    throw Error("inpainting", what,
                std::to_string(a.width) + "x" + std::to_string(a.height) + " (the image's size)",
                std::to_string(b.width) + "x" + std::to_string(b.height));
}

// PIL's DIV255 with rounding: (v + 128 + ((v + 128) >> 8)) >> 8.
uint32_t div255(uint32_t v) {
  const uint32_t t = v + 128;
  return ((t >> 8) + t) >> 8;
}

// One cv2.GaussianBlur pass along a line of 8-bit values: float kernel, BORDER_REFLECT_101,
// rounded to 8 bits.
void blur_line(const uint8_t* in, size_t stride, int n, const std::vector<float>& k, uint8_t* out,
               size_t out_stride) {
  const int r = int(k.size() / 2);
  auto reflect = [n](int i) {
    if (n == 1) return 0;
    while (i < 0 || i >= n) i = i < 0 ? -i : 2 * n - 2 - i;
    return i;
  };
  for (int i = 0; i < n; ++i) {
    float acc = 0.0f;
    for (int t = -r; t <= r; ++t)
      acc += k[size_t(t + r)] * float(in[size_t(reflect(i + t)) * stride]);
    out[size_t(i) * out_stride] = uint8_t(std::clamp(std::lround(acc), 0L, 255L));
  }
}

std::vector<float> gaussian_kernel(float sigma) {
  const int r = int(2.5 * double(sigma) + 0.5);
  std::vector<float> k(size_t(2 * r + 1));
  double sum = 0;
  for (int i = -r; i <= r; ++i) sum += std::exp(-double(i * i) / (2.0 * double(sigma) * sigma));
  for (int i = -r; i <= r; ++i)
    k[size_t(i + r)] = float(std::exp(-double(i * i) / (2.0 * double(sigma) * sigma)) / sum);
  return k;
}

// ---- PIL's box blur (BoxBlur.c) on 4 bands ----------------------------------------------------

using Px = std::array<uint8_t, 4>;

// _gaussian_blur_radius: the fractional box radius whose `passes` repetitions approximate a
// Gaussian of `radius` (Gwosdek et al.), in PIL's float arithmetic.
float box_radius_for(float radius, int passes) {
  const float sigma2 = radius * radius / float(passes);
  const float L = float(std::sqrt(12.0 * double(sigma2) + 1.0));
  const float l = float(std::floor((double(L) - 1.0) / 2.0));
  float a = (2 * l + 1) * (l * (l + 1) - 3 * sigma2);
  a /= 6 * (sigma2 - (l + 1) * (l + 1));
  return l + a;
}

void line_box_blur(const std::vector<Px>& in, std::vector<Px>& out, float float_radius) {
  const int n = int(in.size());
  const int lastx = n - 1;
  const int radius = int(float_radius);
  const uint32_t ww = uint32_t(float(1 << 24) / (float_radius * 2 + 1));
  const uint32_t fw = ((1u << 24) - uint32_t(radius * 2 + 1) * ww) / 2;
  const int edge_a = std::min(radius + 1, n);
  const int edge_b = std::max(n - radius - 1, 0);
  uint32_t acc[4];
  for (int c = 0; c < 4; ++c) {
    acc[c] = uint32_t(in[0][size_t(c)]) * uint32_t(radius + 1);
    for (int x = 0; x < edge_a - 1; ++x) acc[c] += in[size_t(x)][size_t(c)];
    acc[c] += uint32_t(in[size_t(lastx)][size_t(c)]) * uint32_t(radius - edge_a + 1);
  }
  auto step = [&](int x, int sub, int add, int far_left, int far_right) {
    for (int c = 0; c < 4; ++c) {
      acc[c] += uint32_t(in[size_t(add)][size_t(c)]) - uint32_t(in[size_t(sub)][size_t(c)]);
      const uint32_t bulk =
          acc[c] * ww +
          (uint32_t(in[size_t(far_left)][size_t(c)]) + in[size_t(far_right)][size_t(c)]) * fw;
      out[size_t(x)][size_t(c)] = uint8_t((bulk + (1u << 23)) >> 24);
    }
  };
  if (edge_a <= edge_b) {
    for (int x = 0; x < edge_a; ++x) step(x, 0, x + radius, 0, x + radius + 1);
    for (int x = edge_a; x < edge_b; ++x)
      step(x, x - radius - 1, x + radius, x - radius - 1, x + radius + 1);
    for (int x = edge_b; x <= lastx; ++x) step(x, x - radius - 1, lastx, x - radius - 1, lastx);
  } else {
    for (int x = 0; x < edge_b; ++x) step(x, 0, x + radius, 0, x + radius + 1);
    for (int x = edge_b; x < edge_a; ++x) step(x, 0, lastx, 0, lastx);
    for (int x = edge_a; x <= lastx; ++x) step(x, x - radius - 1, lastx, x - radius - 1, lastx);
  }
}

}  // namespace

io::Image a1111_mask_grey(const io::Image& mask, bool round) {
  io::Image g(mask.width, mask.height);
  const bool use_alpha = mask.has_alpha() && std::any_of(mask.alpha.begin(), mask.alpha.end(),
                                                         [](uint8_t a) { return a != 255; });
  for (int y = 0; y < mask.height; ++y)
    for (int x = 0; x < mask.width; ++x) {
      uint8_t v;
      if (use_alpha) {
        v = mask.alpha[size_t(y) * size_t(mask.width) + size_t(x)];
        if (round) v = v > 128 ? 255 : 0;
      } else {  // PIL's RGB -> L: (19595 R + 38470 G + 7471 B + 2^15) >> 16
        const uint8_t* p = mask.pixel(x, y);
        v = uint8_t((19595u * p[0] + 38470u * p[1] + 7471u * p[2] + 0x8000u) >> 16);
      }
      set_grey(g, x, y, v);
    }
  return g;
}

void invert_grey(io::Image& grey) {
  for (uint8_t& v : grey.rgb) v = uint8_t(255 - v);
}

io::Image a1111_mask_blur(const io::Image& grey, float sigma_x, float sigma_y) {
  if (!std::isfinite(sigma_x) || !std::isfinite(sigma_y) || sigma_x < 0 || sigma_y < 0)
    throw UsageError("", "mask blur", "a sigma of 0 or more", "a negative or non-finite value");
  const int w = grey.width, h = grey.height;
  std::vector<uint8_t> plane(size_t(w) * size_t(h)), tmp(plane.size());
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) plane[size_t(y) * size_t(w) + size_t(x)] = grey_of(grey, x, y);
  if (sigma_x > 0) {
    const std::vector<float> k = gaussian_kernel(sigma_x);
    for (int y = 0; y < h; ++y)
      blur_line(plane.data() + size_t(y) * size_t(w), 1, w, k, tmp.data() + size_t(y) * size_t(w),
                1);
    plane.swap(tmp);
  }
  if (sigma_y > 0) {
    const std::vector<float> k = gaussian_kernel(sigma_y);
    for (int x = 0; x < w; ++x)
      blur_line(plane.data() + x, size_t(w), h, k, tmp.data() + x, size_t(w));
    plane.swap(tmp);
  }
  io::Image out(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) set_grey(out, x, y, plane[size_t(y) * size_t(w) + size_t(x)]);
  return out;
}

io::Image doubled_mask(const io::Image& grey) {
  io::Image out = grey;
  out.alpha.clear();
  for (uint8_t& v : out.rgb) v = uint8_t(std::min(2 * unsigned(v), 255u));
  return out;
}

std::optional<CropRegion> mask_crop_region(const io::Image& grey, int pad) {
  int x1 = grey.width, y1 = grey.height, x2 = 0, y2 = 0;
  for (int y = 0; y < grey.height; ++y)
    for (int x = 0; x < grey.width; ++x)
      if (grey_of(grey, x, y) != 0) {
        x1 = std::min(x1, x);
        y1 = std::min(y1, y);
        x2 = std::max(x2, x + 1);
        y2 = std::max(y2, y + 1);
      }
  if (x2 == 0) return std::nullopt;
  return CropRegion{std::max(x1 - pad, 0), std::max(y1 - pad, 0), std::min(x2 + pad, grey.width),
                    std::min(y2 + pad, grey.height)};
}

CropRegion expand_crop_region(CropRegion r, int processing_width, int processing_height,
                              int image_width, int image_height) {
  // Python's float ratios, int() truncation and floor division, as masking.py. The shorter side
  // [lo, hi) grows by `diff` around its centre, then is moved back inside [0, size).
  auto floor_div2 = [](int v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); };
  auto widen = [&](int& lo, int& hi, int diff, int size) {
    lo -= floor_div2(diff);
    hi += diff - floor_div2(diff);
    if (hi >= size) {
      const int d = hi - size;
      hi -= d;
      lo -= d;
    }
    if (lo < 0) {
      hi -= lo;
      lo = 0;
    }
    if (hi >= size) hi = size;
  };
  const double ratio_crop = double(r.x2 - r.x1) / double(r.y2 - r.y1);
  const double ratio_processing = double(processing_width) / double(processing_height);
  if (ratio_crop > ratio_processing) {
    const double desired_height = double(r.x2 - r.x1) / ratio_processing;
    widen(r.y1, r.y2, int(desired_height - double(r.y2 - r.y1)), image_height);
  } else {
    const double desired_width = double(r.y2 - r.y1) * ratio_processing;
    widen(r.x1, r.x2, int(desired_width - double(r.x2 - r.x1)), image_width);
  }
  return r;
}

io::Image crop(const io::Image& image, const CropRegion& r) {
  if (r.x1 < 0 || r.y1 < 0 || r.x2 > image.width || r.y2 > image.height || r.width() <= 0 ||
      r.height() <= 0)
    throw Error(
        "inpainting", "crop region",
        "inside the " + std::to_string(image.width) + "x" + std::to_string(image.height) + " image",
        std::to_string(r.x1) + "," + std::to_string(r.y1) + "-" + std::to_string(r.x2) + "," +
            std::to_string(r.y2));
  io::Image out(r.width(), r.height());
  if (image.has_alpha()) out.alpha.resize(size_t(r.width()) * size_t(r.height()));
  for (int y = 0; y < r.height(); ++y) {
    std::copy_n(image.pixel(r.x1, r.y1 + y), size_t(r.width()) * 3, out.pixel(0, y));
    if (image.has_alpha())
      std::copy_n(image.alpha.data() + size_t(r.y1 + y) * size_t(image.width) + size_t(r.x1),
                  size_t(r.width()), out.alpha.data() + size_t(y) * size_t(r.width()));
  }
  return out;
}

io::Image pil_gaussian_blur(const io::Image& rgba, float radius) {
  if (radius <= 0.0f) return rgba;
  const int w = rgba.width, h = rgba.height;
  std::vector<Px> px(size_t(w) * size_t(h));
  for (size_t i = 0; i < px.size(); ++i)
    px[i] = {rgba.rgb[3 * i], rgba.rgb[3 * i + 1], rgba.rgb[3 * i + 2],
             rgba.has_alpha() ? rgba.alpha[i] : uint8_t(255)};
  const float box = box_radius_for(radius, 3);
  std::vector<Px> line, out_line;
  // Three horizontal passes, then three vertical ones (PIL transposes for those).
  auto passes = [&](int lines, int length, auto at) {
    line.resize(size_t(length));
    out_line.resize(size_t(length));
    for (int l = 0; l < lines; ++l) {
      for (int i = 0; i < length; ++i) line[size_t(i)] = px[at(l, i)];
      for (int p = 0; p < 3; ++p) {
        line_box_blur(line, out_line, box);
        line.swap(out_line);
      }
      for (int i = 0; i < length; ++i) px[at(l, i)] = line[size_t(i)];
    }
  };
  passes(h, w, [w](int y, int x) { return size_t(y) * size_t(w) + size_t(x); });
  passes(w, h, [w](int x, int y) { return size_t(y) * size_t(w) + size_t(x); });
  io::Image out(w, h);
  out.alpha.resize(px.size());
  for (size_t i = 0; i < px.size(); ++i) {
    for (size_t c = 0; c < 3; ++c) out.rgb[3 * i + c] = px[i][c];
    out.alpha[i] = px[i][3];
  }
  return out;
}

namespace {

// RGBA → RGBa (premultiplied) for a fully opaque source pasted through `mask` onto transparent
// black: every band × mask / 255 (PIL's paste_mask_L BLEND).
io::Image premultiplied_through(const io::Image& image, const io::Image& keep_mask) {
  io::Image out(image.width, image.height);
  out.alpha.resize(size_t(image.width) * size_t(image.height));
  for (size_t i = 0; i < out.alpha.size(); ++i) {
    const uint32_t m = keep_mask.rgb[3 * i];
    for (size_t c = 0; c < 3; ++c) out.rgb[3 * i + c] = uint8_t(div255(image.rgb[3 * i + c] * m));
    out.alpha[i] = uint8_t(div255(255u * m));
  }
  return out;
}

// PIL's RGBa → RGBA: colours × 255 / alpha (integer division, clipped) unless alpha is 0 or 255.
void unpremultiply(io::Image& rgba) {
  for (size_t i = 0; i < rgba.alpha.size(); ++i) {
    const uint32_t a = rgba.alpha[i];
    if (a == 0 || a == 255) continue;
    for (size_t c = 0; c < 3; ++c)
      rgba.rgb[3 * i + c] = uint8_t(std::min(255u, 255u * rgba.rgb[3 * i + c] / a));
  }
}

// PIL's Image.alpha_composite(dst, src) in place on dst (both RGBA).
void alpha_composite(io::Image& dst, const io::Image& src) {
  constexpr uint32_t kBits = 7;
  auto shift_div255 = [](uint32_t a) { return ((a >> 8) + a) >> 8; };
  for (size_t i = 0; i < dst.alpha.size(); ++i) {
    const uint32_t sa = src.alpha[i];
    if (sa == 0) continue;
    const uint32_t da = dst.alpha[i];
    const uint32_t blend = da * (255 - sa);
    const uint32_t outa255 = sa * 255 + blend;
    const uint32_t coef1 = sa * 255 * 255 * (1u << kBits) / outa255;
    const uint32_t coef2 = 255 * (1u << kBits) - coef1;
    for (size_t c = 0; c < 3; ++c) {
      const uint32_t t = src.rgb[3 * i + c] * coef1 + dst.rgb[3 * i + c] * coef2;
      dst.rgb[3 * i + c] = uint8_t(shift_div255(t + (0x80u << kBits)) >> kBits);
    }
    dst.alpha[i] = uint8_t(shift_div255(outa255 + 0x80));
  }
}

io::Image inverted(const io::Image& grey) {
  io::Image g = grey;
  invert_grey(g);
  return g;
}

}  // namespace

io::Image masked_content_fill(const io::Image& image, const io::Image& grey_mask) {
  check_grey_size(image, grey_mask, "fill mask");
  // The masked-out image, premultiplied (RGBa), blurred at decreasing radii; each layer back to
  // RGBA and composited over the previous ones.
  const io::Image masked = premultiplied_through(image, inverted(grey_mask));
  io::Image acc(image.width, image.height);
  acc.alpha.assign(size_t(image.width) * size_t(image.height), 0);
  for (const auto& [radius, repeats] :
       {std::pair{256.0f, 1}, {64.0f, 1}, {16.0f, 2}, {4.0f, 4}, {2.0f, 2}, {0.0f, 1}}) {
    io::Image layer = pil_gaussian_blur(masked, radius);
    unpremultiply(layer);
    for (int k = 0; k < repeats; ++k) alpha_composite(acc, layer);
  }
  acc.alpha.clear();
  return acc;
}

io::Image inpaint_overlay(const io::Image& image, const io::Image& overlay_mask) {
  check_grey_size(image, overlay_mask, "overlay mask");
  io::Image out = premultiplied_through(image, inverted(overlay_mask));
  unpremultiply(out);
  return out;
}

io::Image apply_inpaint_overlay(const io::Image& generated,
                                const std::optional<CropRegion>& paste_to,
                                const io::Image& overlay) {
  io::Image base;
  if (paste_to) {
    // uncrop: "crop and resize" into the region on a transparent canvas.
    const io::Image fitted =
        fit_image(generated, paste_to->width(), paste_to->height(), ResizeMode::Crop);
    base = io::Image(overlay.width, overlay.height);
    base.alpha.assign(size_t(overlay.width) * size_t(overlay.height), 0);
    for (int y = 0; y < fitted.height; ++y)
      for (int x = 0; x < fitted.width; ++x) {
        std::copy_n(fitted.pixel(x, y), 3, base.pixel(paste_to->x1 + x, paste_to->y1 + y));
        base.alpha[size_t(paste_to->y1 + y) * size_t(overlay.width) + size_t(paste_to->x1 + x)] =
            255;
      }
  } else {
    check_grey_size(overlay, generated, "generated image");
    base = generated;
    base.alpha.assign(size_t(base.width) * size_t(base.height), 255);
  }
  alpha_composite(base, overlay);
  base.alpha.clear();
  return base;
}

std::vector<float> a1111_latent_mask(const io::Image& grey, int latent_width, int latent_height,
                                     bool round) {
  const io::Image small = resize(grey, latent_width, latent_height, Filter::Bicubic);
  std::vector<float> m(size_t(latent_width) * size_t(latent_height));
  for (int y = 0; y < latent_height; ++y)
    for (int x = 0; x < latent_width; ++x) {
      const float v = float(small.pixel(x, y)[0]) / 255.0f;
      m[size_t(y) * size_t(latent_width) + size_t(x)] = round ? std::nearbyint(v) : v;
    }
  return m;
}

std::vector<float> a1111_mask_values(const io::Image& grey, bool round) {
  std::vector<float> m(size_t(grey.width) * size_t(grey.height));
  for (size_t k = 0; k < m.size(); ++k) {
    const float v = float(grey.rgb[3 * k]) / 255.0f;
    m[k] = round ? std::nearbyint(v) : v;
  }
  return m;
}

std::vector<float> a1111_conditioning_mask(const io::Image& grey, int latent_width,
                                           int latent_height, bool round) {
  const std::vector<float> values = a1111_mask_values(grey, round);
  std::vector<float> m(size_t(latent_width) * size_t(latent_height));
  for (int i = 0; i < latent_height; ++i)
    for (int j = 0; j < latent_width; ++j) {
      const int64_t sy = int64_t(i) * grey.height / latent_height;
      const int64_t sx = int64_t(j) * grey.width / latent_width;
      m[size_t(i) * size_t(latent_width) + size_t(j)] = values[size_t(sy * grey.width + sx)];
    }
  return m;
}

}  // namespace sdc::imaging
