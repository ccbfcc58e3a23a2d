// Image I/O: PNG/JPEG decoding of every colour type, EXIF orientation, size limits checked from
// the header, text chunks, atomic writing, and a precise error for every bad input.
#include <png.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <jpeglib.h>
#include <cstdio>  // before jpeglib.h

#include <algorithm>
#include <csetjmp>
#include <cstring>
#include <fstream>
#include <functional>

#include <gtest/gtest.h>

#include "common/error.h"
#include "common/fixtures.h"
#include "io/image.h"

namespace sdc {
namespace {

using Bytes = std::vector<uint8_t>;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

std::string decode_error(const Bytes& b, const io::ImageLimits& limits = {}) {
  return error_of([&] { io::decode_image(b.data(), b.size(), "pic.png", limits); });
}

// push_back one by one: GCC 12 reports a false -Warray-bounds for vector::insert of a list.
void append(Bytes& b, std::initializer_list<uint8_t> values) {
  for (uint8_t v : values) b.push_back(v);
}

void write_file(const std::string& path, const Bytes& b) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), b.size());
}

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

// A test pattern whose every pixel is distinct: R = x·8, G = y·8, B = 7·x + 3·y.
io::Image pattern(int w, int h) {
  io::Image img(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = img.pixel(x, y);
      p[0] = uint8_t(x * 8);
      p[1] = uint8_t(y * 8);
      p[2] = uint8_t(7 * x + 3 * y);
    }
  return img;
}

// Incompressible pixels, so that the PNG is as large as the image.
io::Image noise_image(int w, int h) {
  io::Image img(w, h);
  uint32_t state = 12345;
  for (uint8_t& b : img.rgb) {
    state = state * 1664525u + 1013904223u;
    b = uint8_t(state >> 24);
  }
  return img;
}

// ---- writing test PNGs with libpng's own API (every colour type, interlacing, chunks) ---------

struct PngSpec {
  uint32_t width = 0, height = 0;
  int depth = 8, color = PNG_COLOR_TYPE_RGB;
  int interlace = PNG_INTERLACE_NONE;
  std::vector<Bytes> rows;              // raw rows in the file's own format
  std::vector<png_color> palette;       // for PNG_COLOR_TYPE_PALETTE
  Bytes trns;                           // palette alpha entries
  Bytes exif;                           // eXIf payload
  std::vector<png_text> before, after;  // text chunks before / after IDAT
};

void on_png_write(png_structp png, png_bytep data, size_t n) {
  auto* out = static_cast<Bytes*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + n);
}

bool write_png_phase(png_structp png, png_infop info, png_infop end, PngSpec* s, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_IHDR(png, info, s->width, s->height, s->depth, s->color, s->interlace,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (!s->palette.empty()) png_set_PLTE(png, info, s->palette.data(), int(s->palette.size()));
  if (!s->trns.empty()) png_set_tRNS(png, info, s->trns.data(), int(s->trns.size()), nullptr);
  if (!s->exif.empty()) png_set_eXIf_1(png, info, png_uint_32(s->exif.size()), s->exif.data());
  if (!s->before.empty()) png_set_text(png, info, s->before.data(), int(s->before.size()));
  png_write_info(png, info);
  if (s->interlace != PNG_INTERLACE_NONE) png_set_interlace_handling(png);
  png_write_image(png, rows);
  if (!s->after.empty()) png_set_text(png, end, s->after.data(), int(s->after.size()));
  png_write_end(png, end);
  return true;
}

Bytes make_png(PngSpec s) {
  Bytes out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png), end = png_create_info_struct(png);
  png_set_write_fn(png, &out, on_png_write, nullptr);
  std::vector<png_bytep> rows;
  for (auto& r : s.rows) rows.push_back(r.data());
  const bool ok = write_png_phase(png, info, end, &s, rows.data());
  // The end-info struct belongs to `png`: free it before the write struct goes.
  png_destroy_info_struct(png, &end);
  png_destroy_write_struct(&png, &info);
  EXPECT_TRUE(ok) << "libpng could not write the test PNG";
  return out;
}

png_text text_chunk(const char* key, const char* value, int compression) {
  png_text t;
  std::memset(&t, 0, sizeof t);
  t.compression = compression;
  t.key = const_cast<char*>(key);
  t.text = const_cast<char*>(value);
  if (compression == PNG_TEXT_COMPRESSION_NONE || compression == PNG_TEXT_COMPRESSION_zTXt)
    t.text_length = std::strlen(value);
  else
    t.itxt_length = std::strlen(value);
  return t;
}

// ---- writing test JPEGs with libjpeg ---------------------------------------------------------

Bytes make_jpeg(int w, int h, int components, J_COLOR_SPACE space, const Bytes& pixels,
                const Bytes& app1 = {}) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* mem = nullptr;
  unsigned long mem_size = 0;
  jpeg_mem_dest(&c, &mem, &mem_size);
  c.image_width = JDIMENSION(w);
  c.image_height = JDIMENSION(h);
  c.input_components = components;
  c.in_color_space = space;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 100, TRUE);
  jpeg_start_compress(&c, TRUE);
  if (!app1.empty()) jpeg_write_marker(&c, JPEG_APP0 + 1, app1.data(), unsigned(app1.size()));
  while (c.next_scanline < c.image_height) {
    JSAMPROW row =
        const_cast<JSAMPROW>(pixels.data() + size_t(c.next_scanline) * size_t(w * components));
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  Bytes out(mem, mem + mem_size);
  jpeg_destroy_compress(&c);
  free(mem);
  return out;
}

// An APP1 payload "Exif\0\0" + TIFF with one IFD0 entry: orientation (SHORT).
Bytes exif_block(int orientation, bool big_endian, bool with_header = true) {
  Bytes b;
  if (with_header) b = {'E', 'x', 'i', 'f', 0, 0};
  auto u16 = [&](uint32_t v) {
    if (big_endian) {
      b.push_back(uint8_t(v >> 8));
      b.push_back(uint8_t(v));
    } else {
      b.push_back(uint8_t(v));
      b.push_back(uint8_t(v >> 8));
    }
  };
  auto u32 = [&](uint32_t v) {
    if (big_endian) {
      u16(v >> 16);
      u16(v & 0xffff);
    } else {
      u16(v & 0xffff);
      u16(v >> 16);
    }
  };
  b.push_back(big_endian ? 'M' : 'I');
  b.push_back(big_endian ? 'M' : 'I');
  u16(42);
  u32(8);                                        // IFD0 right after the header
  u16(2);                                        // two entries: an unrelated one first
  u16(0x010f), u16(2), u32(4), u32(0x00414243);  // Make, ASCII, 4 bytes inline
  u16(0x0112), u16(3), u32(1), u16(uint32_t(orientation)), u16(0);
  u32(0);  // no next IFD
  return b;
}

Bytes flat_rgb(int w, int h, uint8_t r, uint8_t g, uint8_t b) {
  Bytes px(size_t(w * h * 3));
  for (size_t i = 0; i < px.size(); i += 3) px[i] = r, px[i + 1] = g, px[i + 2] = b;
  return px;
}

bool near(const uint8_t* p, int r, int g, int b, int tol = 3) {
  return std::abs(p[0] - r) <= tol && std::abs(p[1] - g) <= tol && std::abs(p[2] - b) <= tol;
}

// ---- fixtures and round trips ----------------------------------------------------------------

TEST(ImageRead, DecodesFixturePngs) {
  io::Image init = io::read_image(test::tiny("images/init_64x64.png"));
  EXPECT_EQ(init.width, 64);
  EXPECT_EQ(init.height, 64);
  EXPECT_EQ(init.rgb.size(), 64u * 64u * 3u);
  EXPECT_FALSE(init.has_alpha());
  io::Image wide = io::read_image(test::tiny("images/txt2img_ddim.png"));
  EXPECT_EQ(wide.width, 96);
  EXPECT_EQ(wide.height, 64);
}

TEST(ImageRead, SniffsByMagicNotName) {
  test::TempDir dir;
  const Bytes png = io::encode_png(pattern(9, 8));
  write_file(dir.file("really_a_png.jpg"), png);
  io::Image img = io::read_image(dir.file("really_a_png.jpg"));
  EXPECT_EQ(img.rgb, pattern(9, 8).rgb);
  EXPECT_EQ(io::sniff_image_format(png.data(), png.size()), io::ImageFormat::Png);
}

TEST(PngWrite, RoundTripsRgbAndRgba) {
  io::Image img = pattern(13, 11);
  const Bytes png = io::encode_png(img);
  io::Image back = io::decode_image(png.data(), png.size(), "x.png");
  EXPECT_EQ(back.width, 13);
  EXPECT_EQ(back.height, 11);
  EXPECT_EQ(back.rgb, img.rgb);
  EXPECT_FALSE(back.has_alpha());

  img.alpha.resize(13 * 11);
  for (size_t i = 0; i < img.alpha.size(); ++i) img.alpha[i] = uint8_t(i * 3);
  const Bytes rgba = io::encode_png(img);
  io::Image back2 = io::decode_image(rgba.data(), rgba.size(), "x.png");
  EXPECT_EQ(back2.rgb, img.rgb);  // colours kept as stored, alpha apart
  EXPECT_EQ(back2.alpha, img.alpha);
}

// The image data is deflated at kPngZlibLevel: the zlib header of the first IDAT says which
// class of level made it (FLEVEL 1: levels 2-5; libpng's default 6 would say 2).
TEST(PngWrite, CompressesAtTheFastLevel) {
  const Bytes png = io::encode_png(pattern(64, 48));
  const uint8_t idat[] = {'I', 'D', 'A', 'T'};
  const auto at = std::search(png.begin(), png.end(), std::begin(idat), std::end(idat));
  ASSERT_NE(at, png.end());
  ASSERT_GT(png.end() - at, 6);
  const uint8_t cmf = at[4], flg = at[5];
  EXPECT_EQ(cmf & 0x0f, 8) << "deflate";
  EXPECT_EQ((cmf * 256 + flg) % 31, 0) << "a valid zlib header";
  EXPECT_EQ(flg >> 6, 1) << "FLEVEL of zlib level " << io::kPngZlibLevel;
}

TEST(PngWrite, WritesAtomicallyWithTextChunks) {
  test::TempDir dir;
  const io::PngText text = {{"parameters", "a cat, caf\xc3\xa9\nSteps: 20, Seed: 1"},
                            {"comment", "\xe7\x8c\xab \xf0\x9f\x90\x88"}};  // needs iTXt
  io::write_png(dir.file("out.png"), pattern(8, 8), text);
  EXPECT_EQ(dir.list(), std::vector<std::string>{"out.png"});
  EXPECT_EQ(io::read_png_text(dir.file("out.png")), text);
  const Bytes bytes = read_file(dir.file("out.png"));
  const std::string s(bytes.begin(), bytes.end());
  // Latin-1 text goes in tEXt (é as the single byte 0xe9), the rest in iTXt.
  EXPECT_NE(s.find(std::string("tEXtparameters\0a cat, caf\xe9", 25)), std::string::npos);
  EXPECT_NE(s.find("iTXtcomment"), std::string::npos);
  EXPECT_EQ(io::read_image(dir.file("out.png")).rgb, pattern(8, 8).rgb);
}

TEST(PngWrite, RefusesBadKeywordsAndText) {
  EXPECT_NE(error_of([] {
              io::encode_png(pattern(8, 8), {{"", "x"}});
            }).find("keyword"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              io::encode_png(pattern(8, 8), {{std::string(80, 'k'), "x"}});
            }).find("1-79 printable Latin-1"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              io::encode_png(pattern(8, 8), {{"k", "bad \xff utf8 \xe7\x8c"}});
            }).find("malformed UTF-8"),
            std::string::npos);
  io::Image broken = pattern(8, 8);
  broken.rgb.pop_back();
  EXPECT_NE(error_of([&] { io::encode_png(broken); }).find("8x8 with 191 colour bytes"),
            std::string::npos);
}

TEST(PngWrite, UnwritableFolderLeavesNothing) {
  test::TempDir dir;
  std::string msg = error_of([&] { io::write_png(dir.file("missing/out.png"), pattern(8, 8)); });
  EXPECT_NE(msg.find("missing/out.png"), std::string::npos) << msg;
  EXPECT_NE(msg.find("output folder"), std::string::npos) << msg;
  write_file(dir.file("plainfile"), {1, 2, 3});
  msg = error_of([&] { io::write_png(dir.file("plainfile/out.png"), pattern(8, 8)); });
  EXPECT_NE(msg.find("an existing directory"), std::string::npos) << msg;
  EXPECT_EQ(dir.list(), std::vector<std::string>{"plainfile"});
}

TEST(PngWrite, FailedWriteLeavesNoTempFile) {
  // A file-size limit makes the write itself fail half way (EFBIG) after the temporary file
  // exists: the error names the file and the temporary file is gone.
  test::TempDir dir;
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  rlimit small = old;
  small.rlim_cur = 100;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  const std::string msg =
      error_of([&] { io::write_png(dir.file("big.png"), noise_image(64, 64)); });
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
  EXPECT_NE(msg.find("big.png: write: expected all bytes written"), std::string::npos) << msg;
  EXPECT_TRUE(dir.list().empty());
}

TEST(PngWrite, ReadOnlyFolderLeavesNothing) {
  if (geteuid() == 0) GTEST_SKIP() << "root can write into read-only folders";
  test::TempDir dir;
  ASSERT_EQ(mkdir(dir.file("ro").c_str(), 0555), 0);
  const std::string msg = error_of([&] { io::write_png(dir.file("ro/out.png"), pattern(8, 8)); });
  EXPECT_NE(msg.find("a writable directory"), std::string::npos) << msg;
  chmod(dir.file("ro").c_str(), 0755);
  EXPECT_EQ(dir.list(), std::vector<std::string>{"ro"});
}

// ---- PNG colour types ------------------------------------------------------------------------

TEST(PngRead, PaletteWithTransparency) {
  PngSpec s;
  s.width = 8, s.height = 8, s.color = PNG_COLOR_TYPE_PALETTE;
  s.palette = {{255, 0, 0}, {0, 255, 0}, {10, 20, 30}};
  s.trns = {255, 128};  // entry 2 has no tRNS value: opaque
  for (uint32_t y = 0; y < 8; ++y) {
    Bytes row(8);
    for (uint32_t x = 0; x < 8; ++x) row[x] = uint8_t((x + y) % 3);
    s.rows.push_back(row);
  }
  const Bytes png = make_png(s);
  io::Image img = io::decode_image(png.data(), png.size(), "p.png");
  ASSERT_EQ(img.width, 8);
  EXPECT_TRUE(near(img.pixel(0, 0), 255, 0, 0, 0));
  EXPECT_TRUE(near(img.pixel(1, 0), 0, 255, 0, 0));
  EXPECT_TRUE(near(img.pixel(2, 0), 10, 20, 30, 0));
  ASSERT_TRUE(img.has_alpha());
  EXPECT_EQ(img.alpha[0], 255);
  EXPECT_EQ(img.alpha[1], 128);
  EXPECT_EQ(img.alpha[2], 255);
}

TEST(PngRead, FourBitPaletteAndOneBitGrey) {
  PngSpec s;
  s.width = 9, s.height = 8, s.depth = 4, s.color = PNG_COLOR_TYPE_PALETTE;
  s.palette = {{0, 0, 0}, {1, 2, 3}, {200, 100, 50}};
  for (int y = 0; y < 8; ++y) s.rows.push_back({0x12, 0x01, 0x20, 0x11, 0x20});  // 9 pixels
  Bytes png = make_png(s);
  io::Image img = io::decode_image(png.data(), png.size(), "p4.png");
  EXPECT_TRUE(near(img.pixel(0, 0), 1, 2, 3, 0));
  EXPECT_TRUE(near(img.pixel(1, 0), 200, 100, 50, 0));
  EXPECT_TRUE(near(img.pixel(8, 7), 200, 100, 50, 0));
  EXPECT_FALSE(img.has_alpha());

  PngSpec g;
  g.width = 8, g.height = 8, g.depth = 1, g.color = PNG_COLOR_TYPE_GRAY;
  for (int y = 0; y < 8; ++y) g.rows.push_back({0xa5});  // 1010 0101
  png = make_png(g);
  img = io::decode_image(png.data(), png.size(), "g1.png");
  EXPECT_TRUE(near(img.pixel(0, 3), 255, 255, 255, 0));
  EXPECT_TRUE(near(img.pixel(1, 3), 0, 0, 0, 0));
  EXPECT_TRUE(near(img.pixel(7, 3), 255, 255, 255, 0));
}

TEST(PngRead, SixteenBitKeepsHighByte) {
  PngSpec s;
  s.width = 8, s.height = 8, s.depth = 16, s.color = PNG_COLOR_TYPE_RGB;
  for (int y = 0; y < 8; ++y) {
    Bytes row;
    for (int x = 0; x < 8; ++x) {
      const uint8_t v[6] = {0x12, 0xff, uint8_t(x * 30), 0x80, 0xfe, 0x01};
      row.insert(row.end(), v, v + 6);
    }
    s.rows.push_back(row);
  }
  Bytes png = make_png(s);
  io::Image img = io::decode_image(png.data(), png.size(), "16.png");
  EXPECT_TRUE(near(img.pixel(5, 2), 0x12, 150, 0xfe, 0));

  PngSpec ga;  // 16-bit grey + alpha
  ga.width = 8, ga.height = 8, ga.depth = 16, ga.color = PNG_COLOR_TYPE_GRAY_ALPHA;
  for (int y = 0; y < 8; ++y) {
    Bytes row;
    for (int x = 0; x < 8; ++x) append(row, {uint8_t(x * 20), 0x99, 0x40, 0x00});
    ga.rows.push_back(row);
  }
  png = make_png(ga);
  img = io::decode_image(png.data(), png.size(), "ga16.png");
  EXPECT_TRUE(near(img.pixel(3, 3), 60, 60, 60, 0));
  ASSERT_TRUE(img.has_alpha());
  EXPECT_EQ(img.alpha[3], 0x40);
}

TEST(PngRead, InterlacedEqualsPlain) {
  PngSpec s;
  s.width = 13, s.height = 11, s.interlace = PNG_INTERLACE_ADAM7;
  const io::Image ref = pattern(13, 11);
  for (int y = 0; y < 11; ++y) s.rows.push_back(Bytes(ref.pixel(0, y), ref.pixel(0, y) + 13 * 3));
  const Bytes png = make_png(s);
  io::Image img = io::decode_image(png.data(), png.size(), "i.png");
  EXPECT_EQ(img.rgb, ref.rgb);
}

TEST(PngRead, TextChunksOfEveryKindBeforeAndAfterImage) {
  PngSpec s;
  s.width = 8, s.height = 8, s.color = PNG_COLOR_TYPE_GRAY, s.interlace = PNG_INTERLACE_ADAM7;
  for (int y = 0; y < 8; ++y) s.rows.push_back(Bytes(8, uint8_t(y)));
  s.before = {text_chunk("plain", "caf\xe9", PNG_TEXT_COMPRESSION_NONE),
              text_chunk("zipped", "zipped text zipped text", PNG_TEXT_COMPRESSION_zTXt)};
  s.after = {text_chunk("intl", "\xce\xb1\xce\xb2", PNG_ITXT_COMPRESSION_zTXt)};
  const Bytes png = make_png(s);
  const io::PngText text = io::decode_png_text(png.data(), png.size(), "t.png");
  const io::PngText want = {{"plain", "caf\xc3\xa9"},
                            {"zipped", "zipped text zipped text"},
                            {"intl", "\xce\xb1\xce\xb2"}};
  EXPECT_EQ(text, want);
}

// ---- EXIF orientation ------------------------------------------------------------------------

// Where stored pixels (0,0), (1,0) and (0,1) must appear for each orientation, from the EXIF
// definition ("the 0th row is at the visual left/right/top/bottom …"), for a W×H stored image.
struct Placement {
  int x00, y00, x10, y10, x01, y01;
};
Placement expected_placement(int o, int w, int h) {
  const int rw = o >= 5 ? h : w, rh = o >= 5 ? w : h;  // displayed size
  switch (o) {
    case 1:
      return {0, 0, 1, 0, 0, 1};
    case 2:
      return {rw - 1, 0, rw - 2, 0, rw - 1, 1};
    case 3:
      return {rw - 1, rh - 1, rw - 2, rh - 1, rw - 1, rh - 2};
    case 4:
      return {0, rh - 1, 1, rh - 1, 0, rh - 2};
    case 5:
      return {0, 0, 0, 1, 1, 0};
    case 6:
      return {rw - 1, 0, rw - 1, 1, rw - 2, 0};
    case 7:
      return {rw - 1, rh - 1, rw - 1, rh - 2, rw - 2, rh - 1};
    default:
      return {0, rh - 1, 0, rh - 2, 1, rh - 1};
  }
}

TEST(ImageExif, AllEightOrientationsFromPngExif) {
  const int w = 10, h = 8;
  const io::Image stored = pattern(w, h);
  for (int o = 1; o <= 8; ++o) {
    SCOPED_TRACE("orientation " + std::to_string(o));
    PngSpec s;
    s.width = w, s.height = h, s.exif = exif_block(o, o % 2 == 0, false);
    for (int y = 0; y < h; ++y)
      s.rows.push_back(Bytes(stored.pixel(0, y), stored.pixel(0, y) + w * 3));
    const Bytes png = make_png(s);
    io::Image img = io::decode_image(png.data(), png.size(), "o.png");
    EXPECT_EQ(img.width, o >= 5 ? h : w);
    EXPECT_EQ(img.height, o >= 5 ? w : h);
    const Placement p = expected_placement(o, w, h);
    EXPECT_EQ(0, std::memcmp(img.pixel(p.x00, p.y00), stored.pixel(0, 0), 3));
    EXPECT_EQ(0, std::memcmp(img.pixel(p.x10, p.y10), stored.pixel(1, 0), 3));
    EXPECT_EQ(0, std::memcmp(img.pixel(p.x01, p.y01), stored.pixel(0, 1), 3));
    // A permutation: every stored pixel appears exactly once.
    std::vector<int> seen(size_t(w * h), 0);
    for (int y = 0; y < img.height; ++y)
      for (int x = 0; x < img.width; ++x)
        ++seen[size_t(img.pixel(x, y)[1] / 8 * w + img.pixel(x, y)[0] / 8)];
    EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), w * h);
  }
}

TEST(ImageExif, JpegOrientation6RotatesClockwise) {
  // 16 wide × 8 high: left half red, right half blue. Rotated 90° clockwise the red half is on top.
  Bytes px(16 * 8 * 3);
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 16; ++x) {
      uint8_t* p = &px[size_t((y * 16 + x) * 3)];
      p[0] = x < 8 ? 255 : 0, p[1] = 0, p[2] = x < 8 ? 0 : 255;
    }
  for (bool big_endian : {false, true}) {
    const Bytes jpg = make_jpeg(16, 8, 3, JCS_RGB, px, exif_block(6, big_endian));
    io::Image img = io::decode_image(jpg.data(), jpg.size(), "r.jpg");
    ASSERT_EQ(img.width, 8);
    ASSERT_EQ(img.height, 16);
    EXPECT_TRUE(near(img.pixel(3, 2), 255, 0, 0, 8));
    EXPECT_TRUE(near(img.pixel(3, 13), 0, 0, 255, 8));
  }
  // Malformed EXIF (IFD offset past the end) is ignored: the image stays as stored.
  Bytes bad = exif_block(6, false);
  bad[10] = 0xff;
  const Bytes jpg = make_jpeg(16, 8, 3, JCS_RGB, px, bad);
  io::Image img = io::decode_image(jpg.data(), jpg.size(), "r.jpg");
  EXPECT_EQ(img.width, 16);
}

// ---- JPEG colour spaces ----------------------------------------------------------------------

TEST(JpegRead, RgbGreyAndCmyk) {
  Bytes jpg = make_jpeg(16, 16, 3, JCS_RGB, flat_rgb(16, 16, 200, 100, 50));
  io::Image img = io::decode_image(jpg.data(), jpg.size(), "c.jpg");
  EXPECT_TRUE(near(img.pixel(7, 7), 200, 100, 50));

  jpg = make_jpeg(16, 16, 1, JCS_GRAYSCALE, Bytes(256, 77));
  img = io::decode_image(jpg.data(), jpg.size(), "g.jpg");
  EXPECT_TRUE(near(img.pixel(3, 9), 77, 77, 77, 1));

  // libjpeg writes an Adobe marker for CMYK, so the samples read as inverted CMYK (as PIL and
  // Photoshop do): with stored K = 255 (no black) RGB equals the stored C, M, Y samples.
  Bytes cmyk;
  for (int i = 0; i < 256; ++i) append(cmyk, {200, 100, 50, 255});
  jpg = make_jpeg(16, 16, 4, JCS_CMYK, cmyk);
  img = io::decode_image(jpg.data(), jpg.size(), "k.jpg");
  EXPECT_TRUE(near(img.pixel(5, 5), 200, 100, 50));
  cmyk.clear();
  for (int i = 0; i < 256; ++i) append(cmyk, {200, 100, 50, 128});  // half black
  jpg = make_jpeg(16, 16, 4, JCS_CMYK, cmyk);
  img = io::decode_image(jpg.data(), jpg.size(), "k.jpg");
  EXPECT_TRUE(near(img.pixel(5, 5), 100, 50, 25));
}

// ---- bad input -------------------------------------------------------------------------------

TEST(ImageBadInput, NotAnImage) {
  test::TempDir dir;
  write_file(dir.file("notes.png"), {'h', 'e', 'l', 'l', 'o'});
  std::string msg = error_of([&] { io::read_image(dir.file("notes.png")); });
  EXPECT_NE(
      msg.find("notes.png: image: expected a PNG or JPEG file, found bytes starting 68 65 6c 6c"),
      std::string::npos)
      << msg;
  write_file(dir.file("empty.png"), {});
  msg = error_of([&] { io::read_image(dir.file("empty.png")); });
  EXPECT_NE(msg.find("empty.png: image: expected a PNG or JPEG file, found an empty file"),
            std::string::npos)
      << msg;
  msg = error_of([&] { io::read_image(dir.file("nonexistent.png")); });
  EXPECT_NE(msg.find("nonexistent.png"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { io::read_png_text(dir.file("notes.png")); }).find("expected a PNG file"),
            std::string::npos);
}

TEST(ImageBadInput, TruncatedPng) {
  const Bytes png = io::encode_png(pattern(64, 64));
  for (size_t keep : {png.size() / 2, png.size() - 12 /* only IEND missing */, size_t(20)}) {
    SCOPED_TRACE(keep);
    const Bytes cut(png.begin(), png.begin() + long(keep));
    EXPECT_NE(decode_error(cut).find("pic.png: PNG data: expected a complete PNG file, found the "
                                     "file ends early (truncated)"),
              std::string::npos)
        << decode_error(cut);
    EXPECT_NE(
        error_of([&] { io::decode_png_text(cut.data(), cut.size(), "pic.png"); }).find("truncated"),
        std::string::npos);
  }
}

TEST(ImageBadInput, CorruptPngData) {
  Bytes png = io::encode_png(pattern(64, 64));
  // Damage a byte inside IDAT: its CRC no longer matches.
  const std::string s(png.begin(), png.end());
  const size_t idat = s.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  png[idat + 10] ^= 0x55;
  const std::string msg = decode_error(png);
  // zlib notices the damage before the chunk's CRC is checked.
  EXPECT_NE(msg.find("pic.png: PNG data: expected a valid PNG file, found IDAT: "),
            std::string::npos)
      << msg;
}

TEST(ImageBadInput, OnePixelPngRefused) {
  io::Image one(1, 1);
  const Bytes png = io::encode_png(one);
  EXPECT_NE(decode_error(png).find("pic.png: image size: expected at least 8x8, at most 8192 on a "
                                   "side and 67108864 pixels, found 1x1"),
            std::string::npos)
      << decode_error(png);
  io::ImageLimits small;
  small.min_side = 1;
  EXPECT_EQ(io::decode_image(png.data(), png.size(), "x", small).width, 1);
}

// Signature + IHDR only, claiming `w`×`h` (valid CRC): nothing else follows, so only a check of
// the header before any decoding can give the size error (a decoder would report truncation).
Bytes png_header_only(uint32_t w, uint32_t h) {
  Bytes b = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
  for (uint32_t v : {w, h})
    append(b, {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)});
  append(b, {8, 2, 0, 0, 0});
  const uLong crc = crc32(crc32(0, nullptr, 0), b.data() + 12, 17);
  append(b, {uint8_t(crc >> 24), uint8_t(crc >> 16), uint8_t(crc >> 8), uint8_t(crc)});
  return b;
}

TEST(ImageBadInput, HugePngRefusedFromHeader) {
  const std::string msg = decode_error(png_header_only(20000, 20000));
  EXPECT_NE(msg.find("pic.png: image size: expected at least 8x8, at most 8192 on a side and "
                     "67108864 pixels, found 20000x20000"),
            std::string::npos)
      << msg;
  EXPECT_NE(decode_error(png_header_only(8193, 16)).find("found 8193x16"), std::string::npos);
  EXPECT_NE(
      decode_error(png_header_only(0x7fffffff, 0x7fffffff)).find("found 2147483647x2147483647"),
      std::string::npos);
  io::ImageLimits pixels;
  pixels.max_pixels = 1000;
  EXPECT_NE(decode_error(png_header_only(100, 100), pixels).find("1000 pixels, found 100x100"),
            std::string::npos);
  // Within the limits the same header is simply a truncated file.
  EXPECT_NE(decode_error(png_header_only(64, 64)).find("truncated"), std::string::npos);
}

TEST(ImageBadInput, TruncatedJpeg) {
  const Bytes jpg = make_jpeg(64, 64, 3, JCS_RGB, pattern(64, 64).rgb);
  const Bytes half(jpg.begin(), jpg.begin() + long(jpg.size() / 2));
  std::string msg = decode_error(half);
  EXPECT_NE(msg.find("pic.png: JPEG data: expected a complete JPEG file, found the file ends "
                     "early (truncated)"),
            std::string::npos)
      << msg;
  const Bytes header_only(jpg.begin(), jpg.begin() + 40);
  msg = decode_error(header_only);
  EXPECT_NE(msg.find("pic.png: JPEG data: expected a "), std::string::npos) << msg;
  const Bytes no_eoi(jpg.begin(), jpg.end() - 2);
  EXPECT_NE(decode_error(no_eoi).find("truncated"), std::string::npos);
}

TEST(ImageBadInput, CorruptJpeg) {
  Bytes garbage = {0xff, 0xd8, 0xff, 0xe0, 0x00, 0x02};
  garbage.insert(garbage.end(), 50, 0x42);
  std::string msg = decode_error(garbage);  // no frame ever starts: libjpeg runs off the end
  EXPECT_NE(msg.find("pic.png: JPEG data: expected a complete JPEG file"), std::string::npos)
      << msg;
  Bytes jpg = make_jpeg(16, 16, 3, JCS_RGB, flat_rgb(16, 16, 1, 2, 3));
  const std::string s(jpg.begin(), jpg.end());
  const size_t sof = s.find("\xff\xc0");
  ASSERT_NE(sof, std::string::npos);
  jpg[sof + 4] = 12;  // sample precision 12: not what an 8-bit decoder reads
  msg = decode_error(jpg);
  EXPECT_NE(msg.find("pic.png: JPEG data: expected a valid JPEG file, found Unsupported JPEG data "
                     "precision 12"),
            std::string::npos)
      << msg;
}

TEST(ImageBadInput, HugeJpegRefusedFromHeader) {
  Bytes jpg = make_jpeg(16, 16, 3, JCS_RGB, flat_rgb(16, 16, 1, 2, 3));
  // Patch the SOF0 frame header: FF C0, length(2), precision(1), height(2), width(2).
  size_t sof = 0;
  for (size_t i = 2; i + 1 < jpg.size(); ++i)
    if (jpg[i] == 0xff && jpg[i + 1] == 0xc0) {
      sof = i;
      break;
    }
  ASSERT_NE(sof, 0u);
  jpg[sof + 5] = 20000 >> 8, jpg[sof + 6] = 20000 & 0xff;
  jpg[sof + 7] = 20000 >> 8, jpg[sof + 8] = 20000 & 0xff;
  const std::string msg = decode_error(jpg);
  EXPECT_NE(msg.find("pic.png: image size: expected at least 8x8, at most 8192 on a side and "
                     "67108864 pixels, found 20000x20000"),
            std::string::npos)
      << msg;
}

}  // namespace
}  // namespace sdc
