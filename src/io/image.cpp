// Image reading entry points: format sniffing, the size limits, and EXIF orientation (parsed here
// from the TIFF structure, every offset bounds-checked).
#include "io/image.h"

#include <cstring>

#include "common/error.h"
#include "io/image_codecs.h"
#include "io/mapped_file.h"

namespace sdc::io {

ImageFormat sniff_image_format(const uint8_t* data, size_t size) {
  static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (size >= 8 && std::memcmp(data, png_sig, 8) == 0) return ImageFormat::Png;
  if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff) return ImageFormat::Jpeg;
  return ImageFormat::Unknown;
}

Image decode_image(const uint8_t* data, size_t size, const std::string& name,
                   const ImageLimits& limits) {
  switch (sniff_image_format(data, size)) {
    case ImageFormat::Png:
      return detail::decode_png(data, size, name, limits);
    case ImageFormat::Jpeg:
      return detail::decode_jpeg(data, size, name, limits);
    case ImageFormat::Unknown:
      break;
  }
  if (size == 0) throw Error(name, "image", "a PNG or JPEG file", "an empty file");
  std::string start;
  for (size_t i = 0; i < size && i < 4; ++i) {
    static const char* hex = "0123456789abcdef";
    start += (i ? " " : "");
    start += hex[data[i] >> 4];
    start += hex[data[i] & 15];
  }
  throw Error(name, "image", "a PNG or JPEG file", "bytes starting " + start);
}

Image read_image(const std::string& path, const ImageLimits& limits) {
  auto file = MappedFile::open(path);
  return decode_image(file->data(), file->size(), path, limits);
}

namespace detail {

void check_image_size(int64_t width, int64_t height, const ImageLimits& limits,
                      const std::string& name) {
  const bool ok = width >= limits.min_side && height >= limits.min_side &&
                  width <= limits.max_side && height <= limits.max_side &&
                  width * height <= limits.max_pixels;
  if (ok) return;
  throw Error(name, "image size",
              "at least " + std::to_string(limits.min_side) + "x" +
                  std::to_string(limits.min_side) + ", at most " + std::to_string(limits.max_side) +
                  " on a side and " + std::to_string(limits.max_pixels) + " pixels",
              std::to_string(width) + "x" + std::to_string(height));
}

namespace {

// A bounds-checked view of a TIFF block in its byte order.
struct TiffView {
  const uint8_t* p;
  size_t n;
  bool little;
  bool u16(size_t off, uint32_t& v) const {
    if (off > n || n - off < 2) return false;
    v = little ? uint32_t(p[off]) | uint32_t(p[off + 1]) << 8
               : uint32_t(p[off]) << 8 | uint32_t(p[off + 1]);
    return true;
  }
  bool u32(size_t off, uint32_t& v) const {
    if (off > n || n - off < 4) return false;
    v = little ? uint32_t(p[off]) | uint32_t(p[off + 1]) << 8 | uint32_t(p[off + 2]) << 16 |
                     uint32_t(p[off + 3]) << 24
               : uint32_t(p[off]) << 24 | uint32_t(p[off + 1]) << 16 | uint32_t(p[off + 2]) << 8 |
                     uint32_t(p[off + 3]);
    return true;
  }
};

}  // namespace

int exif_orientation(const uint8_t* data, size_t size) {
  if (size >= 6 && std::memcmp(data, "Exif\0\0", 6) == 0) {
    data += 6;
    size -= 6;
  }
  if (size < 8) return 1;
  TiffView t{data, size, false};
  if (data[0] == 'I' && data[1] == 'I')
    t.little = true;
  else if (!(data[0] == 'M' && data[1] == 'M'))
    return 1;
  uint32_t magic = 0, ifd0 = 0, count = 0;
  if (!t.u16(2, magic) || magic != 42 || !t.u32(4, ifd0) || !t.u16(ifd0, count)) return 1;
  for (uint32_t i = 0; i < count; ++i) {
    const size_t entry = size_t(ifd0) + 2 + size_t(i) * 12;
    uint32_t tag = 0, type = 0, n = 0, value = 0;
    if (!t.u16(entry, tag) || !t.u16(entry + 2, type) || !t.u32(entry + 4, n)) return 1;
    if (tag != 0x0112) continue;
    // SHORT as the standard says; a LONG is accepted as well (some writers use it).
    if (n != 1) return 1;
    if (type == 3 && !t.u16(entry + 8, value)) return 1;
    if (type == 4 && !t.u32(entry + 8, value)) return 1;
    if (type != 3 && type != 4) return 1;
    return value >= 1 && value <= 8 ? int(value) : 1;
  }
  return 1;
}

void apply_exif_orientation(Image& image, int orientation) {
  if (orientation <= 1 || orientation > 8) return;
  const int w = image.width, h = image.height;
  const bool swap = orientation >= 5;  // 5…8 exchange width and height
  const int ow = swap ? h : w, oh = swap ? w : h;
  // For each output pixel (x, y): the source pixel it comes from.
  auto source = [&](int x, int y, int& sx, int& sy) {
    switch (orientation) {
      case 2:
        sx = w - 1 - x;
        sy = y;
        break;  // mirror left-right
      case 3:
        sx = w - 1 - x;
        sy = h - 1 - y;
        break;  // rotate 180°
      case 4:
        sx = x;
        sy = h - 1 - y;
        break;  // mirror top-bottom
      case 5:
        sx = y;
        sy = x;
        break;  // transpose
      case 6:
        sx = y;
        sy = h - 1 - x;
        break;  // rotate 90° clockwise
      case 7:
        sx = w - 1 - y;
        sy = h - 1 - x;
        break;  // transverse
      default:
        sx = w - 1 - y;
        sy = x;
        break;  // 8: rotate 90° counter-clockwise
    }
  };
  Image out(ow, oh);
  if (image.has_alpha()) out.alpha.resize(size_t(ow) * size_t(oh));
  for (int y = 0; y < oh; ++y)
    for (int x = 0; x < ow; ++x) {
      int sx = 0, sy = 0;
      source(x, y, sx, sy);
      std::memcpy(out.pixel(x, y), image.pixel(sx, sy), 3);
      if (image.has_alpha())
        out.alpha[size_t(y) * size_t(ow) + size_t(x)] =
            image.alpha[size_t(sy) * size_t(w) + size_t(sx)];
    }
  image = std::move(out);
}

}  // namespace detail
}  // namespace sdc::io
