// PNG decoding and encoding with libpng.
//
// libpng reports errors by longjmp. longjmp must never skip a C++ object with a destructor, so
// every libpng call that can fail runs inside a small "phase" function that holds only trivial
// locals and returns false when libpng jumped back to its setjmp; the C++ caller owns all memory
// (vectors, the png_struct guard) in frames the jump never crosses. The callbacks (reading from
// memory, writing to a vector) are equally plain: they record what went wrong and call png_error.
#include <png.h>

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>

#include "common/error.h"
#include "io/atomic_file.h"
#include "io/image_codecs.h"
#include "io/mapped_file.h"

namespace sdc::io {
namespace {

// ---- shared callback state ------------------------------------------------------------------

struct PngIo {
  const uint8_t* data = nullptr;  // reading: the PNG in memory
  size_t size = 0, pos = 0;
  std::vector<uint8_t>* out = nullptr;  // writing: where the bytes go
  bool truncated = false;
  char message[256] = {};
};

void on_error(png_structp png, png_const_charp msg) {
  auto* io = static_cast<PngIo*>(png_get_error_ptr(png));
  if (io->message[0] == '\0') std::snprintf(io->message, sizeof io->message, "%s", msg);
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}  // benign (e.g. a damaged ancillary chunk)

void on_read(png_structp png, png_bytep dst, size_t n) {
  auto* io = static_cast<PngIo*>(png_get_io_ptr(png));
  if (n > io->size - io->pos) {
    io->truncated = true;
    png_error(png, "the file ends early");
  }
  std::memcpy(dst, io->data + io->pos, n);
  io->pos += n;
}

void on_write(png_structp png, png_bytep src, size_t n) {
  auto* io = static_cast<PngIo*>(png_get_io_ptr(png));
  bool failed = false;
  try {
    io->out->insert(io->out->end(), src, src + n);
  } catch (...) {
    failed = true;
  }
  if (failed) png_error(png, "out of memory while encoding");
}

void on_flush(png_structp) {}

// Frees the libpng structures whatever happens.
struct ReadGuard {
  png_structp png = nullptr;
  png_infop info = nullptr, end_info = nullptr;
  ~ReadGuard() {
    if (png) png_destroy_read_struct(&png, info ? &info : nullptr, end_info ? &end_info : nullptr);
  }
};
struct WriteGuard {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~WriteGuard() {
    if (png) png_destroy_write_struct(&png, info ? &info : nullptr);
  }
};

// ---- reading phases (trivial locals only: libpng may longjmp out of them) --------------------

struct PngLayout {
  uint32_t width = 0, height = 0;
  int channels = 0;  // after the transforms: 3 (RGB) or 4 (RGBA)
  size_t rowbytes = 0;
  int passes = 1;
  int orientation = 1;
};

bool phase_read_info(png_structp png, png_infop info, PngLayout* out) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_info(png, info);
  png_uint_32 w = 0, h = 0;
  int depth = 0, color = 0, interlace = 0;
  png_get_IHDR(png, info, &w, &h, &depth, &color, &interlace, nullptr, nullptr);
  // Everything becomes 8-bit RGB or RGBA. 16-bit keeps the high byte, as PIL does.
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  if (depth == 16) png_set_strip_16(png);
  if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
  out->passes = png_set_interlace_handling(png);
  png_read_update_info(png, info);
  out->width = w;
  out->height = h;
  out->channels = png_get_channels(png, info);
  out->rowbytes = png_get_rowbytes(png, info);
  png_bytep exif = nullptr;
  png_uint_32 exif_len = 0;
  if (png_get_eXIf_1(png, info, &exif_len, &exif) != 0 && exif)
    out->orientation = detail::exif_orientation(exif, exif_len);
  return true;
}

bool phase_read_image(png_structp png, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_image(png, rows);
  return true;
}

// Reads every row of every pass into the same scratch row (for callers that want only chunks).
bool phase_skip_image(png_structp png, png_bytep row, uint32_t height, int passes) {
  if (setjmp(png_jmpbuf(png))) return false;
  for (int p = 0; p < passes; ++p)
    for (uint32_t y = 0; y < height; ++y) png_read_row(png, row, nullptr);
  return true;
}

bool phase_read_end(png_structp png, png_infop end_info) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_end(png, end_info);
  return true;
}

// ---- reading ----------------------------------------------------------------------------------

[[noreturn]] void throw_png_error(const PngIo& io, const std::string& name) {
  if (io.truncated)
    throw Error(name, "PNG data", "a complete PNG file", "the file ends early (truncated)");
  throw Error(name, "PNG data", "a valid PNG file", io.message[0] ? io.message : "a libpng error");
}

uint32_t be32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

// The size from the IHDR chunk, read straight from the bytes so that a hostile size is refused
// before libpng (or we) allocate anything for it.
void check_ihdr(const uint8_t* data, size_t size, const std::string& name,
                const ImageLimits& limits) {
  if (size < 8 + 8 + 13)
    throw Error(name, "PNG data", "a complete PNG file", "the file ends early (truncated)");
  if (be32(data + 8) != 13 || std::memcmp(data + 12, "IHDR", 4) != 0)
    throw Error(name, "PNG data", "an IHDR chunk first", "another chunk");
  detail::check_image_size(be32(data + 16), be32(data + 20), limits, name);
  // Every chunk must fit in the bytes we have: libpng buffers an ancillary chunk whole, trusting
  // its length field, so a few bytes claiming a 2 GB text chunk would make it allocate that
  // before noticing the file ends (found by fuzzing the server's image decoding).
  for (size_t pos = 8; pos + 8 <= size;) {
    const uint64_t end = uint64_t(pos) + 12 + be32(data + pos);
    if (end > size)
      throw Error(name, "PNG data", "a complete PNG file", "the file ends early (truncated)");
    if (std::memcmp(data + pos + 4, "IEND", 4) == 0) break;
    pos = size_t(end);
  }
}

void start_read(ReadGuard& g, PngIo& io, const uint8_t* data, size_t size, const std::string& name,
                const ImageLimits& limits) {
  io.data = data;
  io.size = size;
  g.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &io, on_error, on_warning);
  if (!g.png) throw Error(name, "PNG data", "", "libpng could not start (out of memory)");
  g.info = png_create_info_struct(g.png);
  g.end_info = png_create_info_struct(g.png);
  if (!g.info || !g.end_info) throw Error(name, "PNG data", "", "libpng out of memory");
  png_set_read_fn(g.png, &io, on_read);
  png_set_user_limits(g.png, uint32_t(limits.max_side), uint32_t(limits.max_side));
  // Decompressed text and ICC profiles are capped too (nothing legitimate comes near 16 MiB).
  png_set_chunk_malloc_max(g.png, std::max<size_t>(size, size_t(16) << 20));
}

void append_text(png_structp png, png_infop info, PngText& out);

}  // namespace

namespace detail {

Image decode_png(const uint8_t* data, size_t size, const std::string& name,
                 const ImageLimits& limits) {
  check_ihdr(data, size, name, limits);
  PngIo io;
  ReadGuard g;
  start_read(g, io, data, size, name, limits);
  PngLayout layout;
  if (!phase_read_info(g.png, g.info, &layout)) throw_png_error(io, name);
  check_image_size(layout.width, layout.height, limits, name);
  if (layout.channels != 3 && layout.channels != 4)
    throw Error(name, "PNG data", "3 or 4 channels after expansion",
                std::to_string(layout.channels));

  std::vector<uint8_t> pixels(layout.rowbytes * layout.height);
  std::vector<png_bytep> rows(layout.height);
  for (uint32_t y = 0; y < layout.height; ++y) rows[y] = pixels.data() + y * layout.rowbytes;
  if (!phase_read_image(g.png, rows.data())) throw_png_error(io, name);
  if (!phase_read_end(g.png, g.end_info)) throw_png_error(io, name);

  Image img;
  img.width = int(layout.width);
  img.height = int(layout.height);
  if (layout.channels == 3) {
    img.rgb = std::move(pixels);
  } else {
    const size_t n = size_t(img.width) * size_t(img.height);
    img.rgb.resize(n * 3);
    img.alpha.resize(n);
    for (size_t i = 0; i < n; ++i) {
      std::memcpy(&img.rgb[i * 3], &pixels[i * 4], 3);
      img.alpha[i] = pixels[i * 4 + 3];
    }
  }
  apply_exif_orientation(img, layout.orientation);
  return img;
}

}  // namespace detail

PngText decode_png_text(const uint8_t* data, size_t size, const std::string& name) {
  if (sniff_image_format(data, size) != ImageFormat::Png)
    throw Error(name, "PNG data", "a PNG file", size == 0 ? "an empty file" : "another format");
  // Any size libpng itself accepts: only one row is ever allocated.
  ImageLimits limits;
  limits.min_side = 1;
  limits.max_side = 1000000;
  limits.max_pixels = int64_t(1) << 62;
  check_ihdr(data, size, name, limits);
  PngIo io;
  ReadGuard g;
  start_read(g, io, data, size, name, limits);
  PngLayout layout;
  if (!phase_read_info(g.png, g.info, &layout)) throw_png_error(io, name);
  std::vector<uint8_t> row(layout.rowbytes);
  if (!phase_skip_image(g.png, row.data(), layout.height, layout.passes)) throw_png_error(io, name);
  if (!phase_read_end(g.png, g.end_info)) throw_png_error(io, name);
  PngText text;
  append_text(g.png, g.info, text);
  append_text(g.png, g.end_info, text);
  return text;
}

PngText read_png_text(const std::string& path) {
  auto file = MappedFile::open(path);
  return decode_png_text(file->data(), file->size(), path);
}

// ---- text encodings ---------------------------------------------------------------------------

namespace {

std::string latin1_to_utf8(const char* s, size_t n) {
  std::string out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const auto c = uint8_t(s[i]);
    if (c < 0x80) {
      out += char(c);
    } else {
      out += char(0xc0 | (c >> 6));
      out += char(0x80 | (c & 0x3f));
    }
  }
  return out;
}

// UTF-8 → code points; false for malformed UTF-8 (overlong forms, surrogates, > U+10FFFF).
bool decode_utf8(const std::string& s, std::vector<uint32_t>& cps) {
  cps.clear();
  for (size_t i = 0; i < s.size();) {
    const auto c = uint8_t(s[i]);
    int extra = 0;
    uint32_t cp = 0, min = 0;
    if (c < 0x80) {
      cp = c;
    } else if ((c & 0xe0) == 0xc0) {
      extra = 1, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (s.size() - i <= size_t(extra)) return false;
    for (int k = 1; k <= extra; ++k) {
      const auto d = uint8_t(s[i + size_t(k)]);
      if ((d & 0xc0) != 0x80) return false;
      cp = cp << 6 | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    cps.push_back(cp);
    i += size_t(extra) + 1;
  }
  return true;
}

// The Latin-1 bytes of `s` if every character fits, as PIL's add_text tries first.
bool utf8_to_latin1(const std::string& s, std::string& out) {
  std::vector<uint32_t> cps;
  if (!decode_utf8(s, cps)) return false;
  out.clear();
  for (uint32_t cp : cps) {
    if (cp > 0xff) return false;
    out += char(cp);
  }
  return true;
}

void append_text(png_structp png, png_infop info, PngText& out) {
  png_textp texts = nullptr;
  int n = png_get_text(png, info, &texts, nullptr);
  for (int i = 0; i < n; ++i) {
    const png_text& t = texts[i];
    const std::string key = latin1_to_utf8(t.key, std::strlen(t.key));
    if (t.compression == PNG_TEXT_COMPRESSION_NONE || t.compression == PNG_TEXT_COMPRESSION_zTXt)
      out.emplace_back(key, latin1_to_utf8(t.text ? t.text : "", t.text ? t.text_length : 0));
    else
      out.emplace_back(key, std::string(t.text ? t.text : "", t.text ? t.itxt_length : 0));
  }
}

void check_keyword(const std::string& key) {
  std::string latin1;
  bool ok = !key.empty() && utf8_to_latin1(key, latin1) && latin1.size() <= 79 &&
            latin1.front() != ' ' && latin1.back() != ' ' && latin1.find("  ") == std::string::npos;
  for (char ch : latin1) {
    const auto c = uint8_t(ch);
    if (!((c >= 32 && c <= 126) || c >= 161)) ok = false;
  }
  if (!ok)
    throw Error("", "PNG text keyword \"" + key + "\"",
                "1-79 printable Latin-1 characters without leading, trailing or double spaces",
                "something else");
}

// ---- writing ----------------------------------------------------------------------------------

bool phase_write(png_structp png, png_infop info, uint32_t w, uint32_t h, int color,
                 png_textp texts, int ntexts, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_IHDR(png, info, w, h, 8, color, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  // zlib level 4 (libpng's default is 6): a 512x512 image encodes 2-3x faster (25-43 against
  // 80-89 ms on the README's VM, one core, at the end of every image) into a file within 1 % of
  // the size; level 3 and below, without lazy matching, save 10 ms more for 13-17 % larger files.
  png_set_compression_level(png, kPngZlibLevel);
  if (ntexts > 0) png_set_text(png, info, texts, ntexts);
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, info);
  return true;
}

}  // namespace

std::vector<uint8_t> encode_png(const Image& image, const PngText& text) {
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() != size_t(image.width) * size_t(image.height) * 3 ||
      (image.has_alpha() && image.alpha.size() != size_t(image.width) * size_t(image.height)))
    throw Error("", "image to encode as PNG",
                "width × height × 3 colour bytes (and width × height alpha bytes, if any)",
                std::to_string(image.width) + "x" + std::to_string(image.height) + " with " +
                    std::to_string(image.rgb.size()) + " colour bytes");

  // libpng wants mutable char* for the text: keep the converted strings alive here.
  std::vector<std::string> keys, values;
  std::vector<int> compression;
  for (const auto& [k, v] : text) {
    check_keyword(k);
    if (v.find('\0') != std::string::npos)
      throw Error("", "PNG text \"" + k + "\"", "text without NUL characters", "a NUL character");
    std::string latin1_key, latin1_value;
    utf8_to_latin1(k, latin1_key);
    keys.push_back(latin1_key);
    if (utf8_to_latin1(v, latin1_value)) {
      values.push_back(latin1_value);
      compression.push_back(PNG_TEXT_COMPRESSION_NONE);
    } else {
      std::vector<uint32_t> cps;
      if (!decode_utf8(v, cps))
        throw Error("", "PNG text \"" + k + "\"", "valid UTF-8", "malformed UTF-8");
      values.push_back(v);
      compression.push_back(PNG_ITXT_COMPRESSION_NONE);
    }
  }
  std::vector<png_text> texts(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    std::memset(&texts[i], 0, sizeof(png_text));
    texts[i].compression = compression[i];
    texts[i].key = keys[i].data();
    texts[i].text = values[i].data();
    if (compression[i] == PNG_TEXT_COMPRESSION_NONE)
      texts[i].text_length = values[i].size();
    else
      texts[i].itxt_length = values[i].size();
  }

  const int channels = image.has_alpha() ? 4 : 3;
  std::vector<uint8_t> interleaved;
  const uint8_t* pixels = image.rgb.data();
  if (channels == 4) {
    const size_t n = size_t(image.width) * size_t(image.height);
    interleaved.resize(n * 4);
    for (size_t i = 0; i < n; ++i) {
      std::memcpy(&interleaved[i * 4], &image.rgb[i * 3], 3);
      interleaved[i * 4 + 3] = image.alpha[i];
    }
    pixels = interleaved.data();
  }
  const size_t stride = size_t(image.width) * size_t(channels);
  std::vector<png_bytep> rows(size_t(image.height));
  for (size_t y = 0; y < rows.size(); ++y) rows[y] = const_cast<png_bytep>(pixels + y * stride);

  std::vector<uint8_t> out;
  out.reserve(stride * size_t(image.height) / 2 + 1024);
  PngIo io;
  io.out = &out;
  WriteGuard g;
  g.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &io, on_error, on_warning);
  if (!g.png) throw Error("", "PNG encoder", "", "libpng could not start (out of memory)");
  g.info = png_create_info_struct(g.png);
  if (!g.info) throw Error("", "PNG encoder", "", "libpng out of memory");
  png_set_write_fn(g.png, &io, on_write, on_flush);
  if (!phase_write(g.png, g.info, uint32_t(image.width), uint32_t(image.height),
                   channels == 4 ? PNG_COLOR_TYPE_RGB_ALPHA : PNG_COLOR_TYPE_RGB, texts.data(),
                   int(texts.size()), rows.data()))
    throw Error("", "PNG encoder", "", io.message[0] ? io.message : "a libpng error");
  return out;
}

void write_png(const std::string& path, const Image& image, const PngText& text) {
  std::vector<uint8_t> bytes;
  try {
    bytes = encode_png(image, text);
  } catch (const Error& e) {
    throw e.with_file(path);
  }
  AtomicFile file(path);
  file.write(bytes.data(), bytes.size());
  file.commit();
}

}  // namespace sdc::io
