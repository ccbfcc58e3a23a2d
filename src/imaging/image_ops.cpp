// Image ⇄ tensor conversions, alpha flattening, PIL-exact Lanczos resizing and A1111's resize
// modes. See image_ops.h for the conventions each function reproduces.
#include "imaging/image_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/error.h"

namespace sdc::imaging {

// ---- tensors ---------------------------------------------------------------------------------

namespace {

void check_image(const io::Image& image, const char* what) {
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() != size_t(image.width) * size_t(image.height) * 3)
    throw Error("", what, "a non-empty image with width × height × 3 bytes",
                std::to_string(image.width) + "x" + std::to_string(image.height) + " with " +
                    std::to_string(image.rgb.size()) + " bytes");
}

uint8_t unit_to_u8(float u) {
  if (!(u > 0.0f)) return 0;  // also NaN
  if (u > 1.0f) u = 1.0f;
  return uint8_t(std::nearbyint(u * 255.0f));  // round half to even, as numpy
}

}  // namespace

void image_to_unit_tensor(const io::Image& image, float* out) {
  check_image(image, "image");
  const size_t n = size_t(image.width) * size_t(image.height);
  for (size_t i = 0; i < n; ++i)
    for (size_t c = 0; c < 3; ++c) out[c * n + i] = float(image.rgb[i * 3 + c]) / 255.0f;
}

void image_to_signed_tensor(const io::Image& image, float* out) {
  check_image(image, "image");
  const size_t n = size_t(image.width) * size_t(image.height);
  for (size_t i = 0; i < n; ++i)
    for (size_t c = 0; c < 3; ++c)
      out[c * n + i] = 2.0f * (float(image.rgb[i * 3 + c]) / 255.0f) - 1.0f;
}

std::vector<float> image_to_unit_tensor(const io::Image& image) {
  std::vector<float> t(size_t(std::max(image.width, 0)) * size_t(std::max(image.height, 0)) * 3);
  image_to_unit_tensor(image, t.data());
  return t;
}

std::vector<float> image_to_signed_tensor(const io::Image& image) {
  std::vector<float> t(size_t(std::max(image.width, 0)) * size_t(std::max(image.height, 0)) * 3);
  image_to_signed_tensor(image, t.data());
  return t;
}

io::Image image_from_unit_tensor(const float* chw, int width, int height) {
  io::Image img(width, height);
  const size_t n = size_t(width) * size_t(height);
  for (size_t i = 0; i < n; ++i)
    for (size_t c = 0; c < 3; ++c) img.rgb[i * 3 + c] = unit_to_u8(chw[c * n + i]);
  return img;
}

io::Image image_from_signed_tensor(const float* chw, int width, int height) {
  io::Image img(width, height);
  const size_t n = size_t(width) * size_t(height);
  for (size_t i = 0; i < n; ++i)
    for (size_t c = 0; c < 3; ++c) img.rgb[i * 3 + c] = unit_to_u8(chw[c * n + i] / 2.0f + 0.5f);
  return img;
}

io::Image image_from_signed_tensor_truncated(const float* chw, int width, int height) {
  io::Image img(width, height);
  const size_t n = size_t(width) * size_t(height);
  for (size_t i = 0; i < n; ++i)
    for (size_t c = 0; c < 3; ++c) {
      float v = (chw[c * n + i] + 1.0f) / 2.0f;
      v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);  // NaN stays NaN and becomes 0 below
      const float scaled = 255.0f * v;
      img.rgb[i * 3 + c] = scaled >= 0.0f ? uint8_t(scaled) : 0;
    }
  return img;
}

// ---- alpha -----------------------------------------------------------------------------------

void flatten_alpha(io::Image& image, uint8_t r, uint8_t g, uint8_t b) {
  if (!image.has_alpha()) return;
  const uint8_t bg[3] = {r, g, b};
  const size_t n = size_t(image.width) * size_t(image.height);
  for (size_t i = 0; i < n; ++i) {
    const int a = image.alpha[i];
    for (size_t c = 0; c < 3; ++c) {
      const int t = bg[c] * (255 - a) + image.rgb[i * 3 + c] * a + 128;  // PIL's BLEND/DIV255
      image.rgb[i * 3 + c] = uint8_t(((t >> 8) + t) >> 8);
    }
  }
  image.alpha.clear();
}

// ---- PIL's resampling ----------------------------------------------------------------

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // PIL's fixed point for 8-bit images

double sinc(double x) {
  if (x == 0.0) return 1.0;
  x *= M_PI;
  return std::sin(x) / x;
}

double lanczos3(double x) {
  return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3.0) : 0.0;
}

double bicubic(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// For each output index: the first input index, how many inputs, and their fixed-point weights.
struct Kernel {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> weights;  // out_size × ksize
};

Kernel make_kernel(int in_size, double in0, double in1, int out_size, Filter filter) {
  double (*f)(double) = filter == Filter::Lanczos ? lanczos3 : bicubic;
  const double scale = (in1 - in0) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = (filter == Filter::Lanczos ? 3.0 : 2.0) * filterscale;
  Kernel k;
  k.ksize = int(std::ceil(support)) * 2 + 1;
  k.first.resize(size_t(out_size));
  k.count.resize(size_t(out_size));
  k.weights.assign(size_t(out_size) * size_t(k.ksize), 0);
  std::vector<double> w(size_t(k.ksize));
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = int(center - support + 0.5);  // truncation, as PIL's (int) cast
    if (xmin < 0) xmin = 0;
    int xmax = int(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double total = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[size_t(x)] = f((x + xmin - center + 0.5) * ss);
      total += w[size_t(x)];
    }
    int32_t* out = &k.weights[size_t(xx) * size_t(k.ksize)];
    for (int x = 0; x < xmax; ++x) {
      const double v = total != 0.0 ? w[size_t(x)] / total : w[size_t(x)];
      const double fixed = v * double(1 << kPrecisionBits);
      out[x] = int32_t(v < 0 ? -0.5 + fixed : 0.5 + fixed);
    }
    k.first[size_t(xx)] = xmin;
    k.count[size_t(xx)] = std::max(xmax, 0);
  }
  return k;
}

uint8_t clip8(int64_t acc) {
  const int64_t v = acc >> kPrecisionBits;  // floor, as PIL's arithmetic shift
  return uint8_t(v < 0 ? 0 : v > 255 ? 255 : v);
}

// Horizontal pass over source rows [row0, row0 + rows).
io::Image resample_horizontal(const io::Image& in, int out_w, int row0, int rows, const Kernel& k) {
  io::Image out(out_w, rows);
  for (int y = 0; y < rows; ++y) {
    const uint8_t* src = in.pixel(0, row0 + y);
    for (int xx = 0; xx < out_w; ++xx) {
      const int32_t* w = &k.weights[size_t(xx) * size_t(k.ksize)];
      const int first = k.first[size_t(xx)], count = k.count[size_t(xx)];
      int64_t acc[3] = {1 << (kPrecisionBits - 1), 1 << (kPrecisionBits - 1),
                        1 << (kPrecisionBits - 1)};
      for (int x = 0; x < count; ++x) {
        const uint8_t* p = src + size_t(first + x) * 3;
        for (int c = 0; c < 3; ++c) acc[c] += int64_t(p[c]) * w[x];
      }
      uint8_t* o = out.pixel(xx, y);
      for (int c = 0; c < 3; ++c) o[c] = clip8(acc[c]);
    }
  }
  return out;
}

// Vertical pass; `shift` is subtracted from the kernel's first rows (rows already dropped).
io::Image resample_vertical(const io::Image& in, int out_h, int shift, const Kernel& k) {
  io::Image out(in.width, out_h);
  const size_t stride = size_t(in.width) * 3;
  for (int yy = 0; yy < out_h; ++yy) {
    const int32_t* w = &k.weights[size_t(yy) * size_t(k.ksize)];
    const int first = k.first[size_t(yy)] - shift, count = k.count[size_t(yy)];
    uint8_t* o = out.pixel(0, yy);
    for (size_t i = 0; i < stride; ++i) {
      int64_t acc = 1 << (kPrecisionBits - 1);
      for (int y = 0; y < count; ++y) acc += int64_t(in.rgb[size_t(first + y) * stride + i]) * w[y];
      o[i] = clip8(acc);
    }
  }
  return out;
}

}  // namespace

io::Image resize(const io::Image& image, int width, int height, const SourceBox& box,
                 Filter filter) {
  check_image(image, "image to resize");
  if (width <= 0 || height <= 0)
    throw Error("", "resize target", "a positive size",
                std::to_string(width) + "x" + std::to_string(height));
  if (box.x0 < 0 || box.y0 < 0 || box.x1 > image.width || box.y1 > image.height ||
      box.x1 < box.x0 || box.y1 < box.y0)
    throw Error("", "resize box", "a (possibly empty) rectangle inside the image",
                "one reaching outside it");
  io::Image src = image;
  src.alpha.clear();
  if (width == image.width && height == image.height && box.x0 == 0 && box.y0 == 0 &&
      box.x1 == width && box.y1 == height)
    return src;
  const bool need_h = width != image.width || box.x0 != 0 || box.x1 != width;
  const bool need_v = height != image.height || box.y0 != 0 || box.y1 != height;
  const Kernel kh = make_kernel(image.width, box.x0, box.x1, width, filter);
  const Kernel kv = make_kernel(image.height, box.y0, box.y1, height, filter);
  // Only the source rows the vertical pass reads are resampled horizontally (as PIL does).
  const int row_first = kv.first[0];
  const int row_last = kv.first[size_t(height) - 1] + kv.count[size_t(height) - 1];
  int shift = 0;
  if (need_h) {
    src = resample_horizontal(src, width, row_first, row_last - row_first, kh);
    shift = row_first;
  }
  if (need_v) src = resample_vertical(src, height, shift, kv);
  return src;
}

io::Image resize(const io::Image& image, int width, int height, Filter filter) {
  return resize(image, width, height, SourceBox{0, 0, double(image.width), double(image.height)},
                filter);
}

// ---- A1111 resize modes ----------------------------------------------------------------------

const char* resize_mode_name(ResizeMode mode) {
  switch (mode) {
    case ResizeMode::Resize:
      return "resize";
    case ResizeMode::Crop:
      return "crop";
    case ResizeMode::Fill:
      return "fill";
  }
  return "?";
}

ResizeMode parse_resize_mode(const std::string& name) {
  if (name == "resize" || name == "Just resize") return ResizeMode::Resize;
  if (name == "crop" || name == "Crop and resize") return ResizeMode::Crop;
  if (name == "fill" || name == "Resize and fill") return ResizeMode::Fill;
  throw UsageError("", "resize mode", "resize, crop or fill", "\"" + name + "\"");
}

namespace {

// PIL's Image.paste(part, (dx, dy)) onto `canvas`: the overlapping region is copied.
void paste(io::Image& canvas, const io::Image& part, int dx, int dy) {
  for (int y = std::max(0, dy); y < std::min(canvas.height, dy + part.height); ++y) {
    const int x0 = std::max(0, dx), x1 = std::min(canvas.width, dx + part.width);
    if (x1 > x0) std::memcpy(canvas.pixel(x0, y), part.pixel(x0 - dx, y - dy), size_t(x1 - x0) * 3);
  }
}

}  // namespace

io::Image fit_image(const io::Image& image, int width, int height, ResizeMode mode) {
  check_image(image, "image to fit");
  if (width <= 0 || height <= 0)
    throw Error("", "target size", "a positive size",
                std::to_string(width) + "x" + std::to_string(height));
  if (mode == ResizeMode::Resize) return resize(image, width, height);

  const double ratio = double(width) / height;
  const double src_ratio = double(image.width) / image.height;
  const int64_t scaled_w = int64_t(image.width) * height / image.height;
  const int64_t scaled_h = int64_t(image.height) * width / image.width;
  int src_w = 0, src_h = 0;
  if (mode == ResizeMode::Crop) {
    src_w = ratio > src_ratio ? width : int(scaled_w);
    src_h = ratio <= src_ratio ? height : int(scaled_h);
  } else {
    src_w = ratio < src_ratio ? width : int(scaled_w);
    src_h = ratio >= src_ratio ? height : int(scaled_h);
  }
  if (src_w <= 0 || src_h <= 0)
    throw Error(
        "", "init image aspect ratio",
        "one that still covers a pixel at " + std::to_string(width) + "x" + std::to_string(height),
        std::to_string(image.width) + "x" + std::to_string(image.height));
  const io::Image resized = resize(image, src_w, src_h);
  io::Image out(width, height);  // black, as PIL's Image.new("RGB", ...)
  paste(out, resized, width / 2 - src_w / 2, height / 2 - src_h / 2);
  if (mode == ResizeMode::Crop) return out;

  // The bands: A1111 calls PIL's resize without a filter here, which means bicubic.
  const double rw = resized.width, rh = resized.height;
  const Filter bands = Filter::Bicubic;
  if (ratio < src_ratio) {
    const int fill = height / 2 - src_h / 2;
    if (fill > 0) {
      paste(out, resize(resized, width, fill, {0, 0, double(width), 0}, bands), 0, 0);
      paste(out, resize(resized, width, fill, {0, rh, double(width), rh}, bands), 0, fill + src_h);
    }
  } else if (ratio > src_ratio) {
    const int fill = width / 2 - src_w / 2;
    if (fill > 0) {
      paste(out, resize(resized, fill, height, {0, 0, 0, double(height)}, bands), 0, 0);
      paste(out, resize(resized, fill, height, {rw, 0, rw, double(height)}, bands), fill + src_w,
            0);
    }
  }
  return out;
}

}  // namespace sdc::imaging
