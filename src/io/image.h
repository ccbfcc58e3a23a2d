// Image files: decoding PNG and JPEG into 8-bit RGB, encoding PNG with text chunks (the A1111
// "parameters" text lives there), and reading those text chunks back. The format is recognised by
// its magic bytes, never by the file name. Sizes are checked against ImageLimits from the header,
// before any pixel memory is allocated.
//
// Colour handling, chosen to match what PIL's Image.convert("RGB") gives (diffusers' load_image,
// A1111's input path):
//   - grey, grey+alpha, palette, RGB, RGBA PNGs at 1/2/4/8/16 bits, interlaced or not;
//     16-bit samples keep their high byte (as PIL does for RGB; for 16-bit grey PIL clips the
//     value to 255 instead, which whitens the image — not reproduced), grey is replicated to R=G=B.
//   - alpha is NOT applied to the colours: `rgb` holds the stored colours and `alpha` keeps the
//     alpha channel (empty when the file has none). pipeline::flatten_alpha() composites on a
//     background colour, as A1111's img2img does (images.flatten onto img2img_background_color).
//   - JPEG grey, YCbCr and CMYK/YCCK (Adobe-inverted CMYK recognised by its Adobe marker).
//   - The EXIF orientation (APP1 "Exif" in JPEG, eXIf in PNG; tag 0x0112 of IFD0) is applied,
//     all 8 values, as PIL's ImageOps.exif_transpose does (A1111 calls it on uploads).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sdc::io {

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;    // height * width * 3 bytes, rows top to bottom, R G B interleaved
  std::vector<uint8_t> alpha;  // empty, or height * width bytes (255 = opaque)

  Image() = default;
  Image(int w, int h) : width(w), height(h), rgb(size_t(w) * size_t(h) * 3, 0) {}
  bool has_alpha() const { return !alpha.empty(); }
  uint8_t* pixel(int x, int y) { return rgb.data() + (size_t(y) * size_t(width) + size_t(x)) * 3; }
  const uint8_t* pixel(int x, int y) const {
    return rgb.data() + (size_t(y) * size_t(width) + size_t(x)) * 3;
  }
};

// What image sizes a reader accepts. The defaults are what generation can use: at least 8×8
// (one latent pixel), at most 8192 on a side and 64 Mpixel.
struct ImageLimits {
  int min_side = 8;
  int max_side = 8192;
  int64_t max_pixels = int64_t(8192) * 8192;
};

enum class ImageFormat { Unknown, Png, Jpeg };
// Recognises the format from the first bytes (PNG signature, JPEG SOI marker).
ImageFormat sniff_image_format(const uint8_t* data, size_t size);

// Reads and decodes `path`. Throws sdc::Error naming the file for anything that is not a
// complete, valid PNG or JPEG within `limits`.
Image read_image(const std::string& path, const ImageLimits& limits = {});
// The same for bytes in memory; `name` stands for the file in error messages.
Image decode_image(const uint8_t* data, size_t size, const std::string& name,
                   const ImageLimits& limits = {});

// Text chunks as (keyword, text) pairs, both UTF-8, in file order.
using PngText = std::vector<std::pair<std::string, std::string>>;

// Encodes `image` (its alpha too, when it has one) as PNG with `text` chunks: tEXt when keyword
// and text are Latin-1, iTXt (UTF-8) otherwise, as PIL's PngInfo.add_text does. Keywords must
// be 1–79 printable Latin-1 characters.
std::vector<uint8_t> encode_png(const Image& image, const PngText& text = {});
// The zlib level encode_png compresses with (see png_io.cpp for why).
constexpr int kPngZlibLevel = 4;
// encode_png written atomically: a temporary file beside `path`, fsync, rename. On any error no
// file (and no temporary file) is left behind.
void write_png(const std::string& path, const Image& image, const PngText& text = {});

// The tEXt, zTXt and iTXt chunks of a PNG, before and after the image data (Latin-1 converted to
// UTF-8). Pixels are decoded row by row into one scratch row, so any size libpng accepts works.
PngText read_png_text(const std::string& path);
PngText decode_png_text(const uint8_t* data, size_t size, const std::string& name);

}  // namespace sdc::io
