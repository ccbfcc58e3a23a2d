// JPEG decoding with libjpeg(-turbo).
//
// libjpeg's error_exit must not return, and throwing a C++ exception through libjpeg's C frames
// is undefined, so errors longjmp back to a setjmp in a small "phase" function with only trivial
// locals; the C++ caller owns every buffer in frames the jump never crosses. libjpeg treats a
// file that ends early as a warning and pads the image with grey; here that warning is an error,
// as PIL also refuses truncated files. Other recoverable-data warnings are ignored, as in PIL.
#include <cstdio>  // jpeglib.h needs FILE and size_t first

#include <jerror.h>
#include <jpeglib.h>

#include <csetjmp>
#include <cstring>

#include "common/error.h"
#include "io/image_codecs.h"

namespace sdc::io {
namespace {

struct JpegErrors {
  jpeg_error_mgr mgr;  // first member: libjpeg hands us a pointer to it
  std::jmp_buf jump;
  bool truncated;
  char message[JMSG_LENGTH_MAX];
};

void on_error_exit(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<JpegErrors*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->message);
  std::longjmp(e->jump, 1);
}

void on_message(j_common_ptr cinfo, int level) {
  auto* e = reinterpret_cast<JpegErrors*>(cinfo->err);
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
    e->truncated = true;
    (*cinfo->err->format_message)(cinfo, e->message);
    std::longjmp(e->jump, 1);
  }
}

void on_output_message(j_common_ptr) {}  // never print to stderr

struct JpegHeader {
  uint32_t width, height;
  J_COLOR_SPACE color;
  int components;
  bool adobe;
};

// ---- phases (trivial locals only: libjpeg may longjmp out of them) ---------------------------

bool phase_header(jpeg_decompress_struct* c, JpegErrors* e, const uint8_t* data, size_t size,
                  JpegHeader* h) {
  if (setjmp(e->jump)) return false;
  jpeg_mem_src(c, data, static_cast<unsigned long>(size));
  jpeg_save_markers(c, JPEG_APP0 + 1, 0xffff);
  jpeg_read_header(c, TRUE);
  h->width = c->image_width;
  h->height = c->image_height;
  h->color = c->jpeg_color_space;
  h->components = c->num_components;
  h->adobe = c->saw_Adobe_marker != 0;
  return true;
}

bool phase_start(jpeg_decompress_struct* c, JpegErrors* e, J_COLOR_SPACE out, int* components) {
  if (setjmp(e->jump)) return false;
  c->out_color_space = out;
  jpeg_start_decompress(c);
  *components = c->output_components;
  return true;
}

bool phase_rows(jpeg_decompress_struct* c, JpegErrors* e, uint8_t* pixels, size_t stride) {
  if (setjmp(e->jump)) return false;
  while (c->output_scanline < c->output_height) {
    JSAMPROW row = pixels + size_t(c->output_scanline) * stride;
    jpeg_read_scanlines(c, &row, 1);
  }
  jpeg_finish_decompress(c);
  return true;
}

struct DecompressGuard {
  jpeg_decompress_struct c;
  bool created = false;
  ~DecompressGuard() {
    if (created) jpeg_destroy_decompress(&c);
  }
};

[[noreturn]] void throw_jpeg_error(const JpegErrors& e, const std::string& name) {
  if (e.truncated)
    throw Error(name, "JPEG data", "a complete JPEG file", "the file ends early (truncated)");
  throw Error(name, "JPEG data", "a valid JPEG file", e.message[0] ? e.message : "a libjpeg error");
}

// PIL's CMYK → RGB: R = (255 − K) − C·(255 − K)/255, rounded as its MULDIV255.
uint8_t cmyk_channel(int c, int k) {
  const int nk = 255 - k;
  int t = c * nk + 128;
  const int v = nk - (((t >> 8) + t) >> 8);
  return uint8_t(v < 0 ? 0 : v > 255 ? 255 : v);
}

}  // namespace

namespace detail {

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name,
                  const ImageLimits& limits) {
  DecompressGuard g;
  JpegErrors errors;
  std::memset(&errors, 0, sizeof errors);
  g.c.err = jpeg_std_error(&errors.mgr);
  errors.mgr.error_exit = on_error_exit;
  errors.mgr.emit_message = on_message;
  errors.mgr.output_message = on_output_message;
  jpeg_create_decompress(&g.c);
  g.created = true;

  JpegHeader h{};
  if (!phase_header(&g.c, &errors, data, size, &h)) throw_jpeg_error(errors, name);
  check_image_size(h.width, h.height, limits, name);
  // The saved markers live in libjpeg's image pool, which jpeg_finish_decompress frees: read the
  // orientation now.
  int orientation = 1;
  for (jpeg_saved_marker_ptr m = g.c.marker_list; m; m = m->next)
    if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 &&
        std::memcmp(m->data, "Exif\0\0", 6) == 0) {
      orientation = exif_orientation(m->data, m->data_length);
      break;
    }

  J_COLOR_SPACE out = JCS_RGB;
  if (h.color == JCS_GRAYSCALE) out = JCS_GRAYSCALE;
  if (h.color == JCS_CMYK || h.color == JCS_YCCK) out = JCS_CMYK;
  int components = 0;
  if (!phase_start(&g.c, &errors, out, &components)) throw_jpeg_error(errors, name);
  const size_t stride = size_t(h.width) * size_t(components);
  std::vector<uint8_t> pixels(stride * h.height);
  if (!phase_rows(&g.c, &errors, pixels.data(), stride)) throw_jpeg_error(errors, name);

  Image img;
  img.width = int(h.width);
  img.height = int(h.height);
  const size_t n = size_t(h.width) * size_t(h.height);
  if (components == 3) {
    img.rgb = std::move(pixels);
  } else if (components == 1) {
    img.rgb.resize(n * 3);
    for (size_t i = 0; i < n; ++i)
      img.rgb[i * 3] = img.rgb[i * 3 + 1] = img.rgb[i * 3 + 2] = pixels[i];
  } else if (components == 4) {
    // Adobe applications store CMYK inverted (and say so with their APP14 marker).
    img.rgb.resize(n * 3);
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* p = &pixels[i * 4];
      const int k = h.adobe ? 255 - p[3] : p[3];
      for (int ch = 0; ch < 3; ++ch)
        img.rgb[i * 3 + size_t(ch)] = cmyk_channel(h.adobe ? 255 - p[ch] : p[ch], k);
    }
  } else {
    throw Error(name, "JPEG colour components", "1, 3 or 4", std::to_string(components));
  }
  apply_exif_orientation(img, orientation);
  return img;
}

}  // namespace detail
}  // namespace sdc::io
