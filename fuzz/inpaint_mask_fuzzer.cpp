// libFuzzer target: A1111's inpainting preprocessing on arbitrary images and options — the mask
// (alpha or grey), invert, blur, "Only masked" crop box and its widening, masked-content fill,
// the overlay and the paste-back. Any input must give images of the promised sizes or a clean
// sdc::Error; the crop region must lie inside the image.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "common/error.h"
#include "imaging/a1111_masking.h"
#include "pipeline/a1111_inpainting.h"

namespace {

struct Reader {
  const uint8_t* p;
  size_t n;
  uint8_t byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader in{data, size};
  const int iw = 1 + in.byte() % 96, ih = 1 + in.byte() % 96;
  const int mw = in.byte() % 4 == 0 ? 1 + in.byte() % 96 : iw;
  const int mh = mw == iw ? ih : 1 + in.byte() % 96;
  sdc::pipeline::GenerationRequest r;
  r.width = 8 * (1 + in.byte() % 12);
  r.height = 8 * (1 + in.byte() % 12);
  const uint8_t flags = in.byte();
  r.mask_invert = flags & 1;
  r.inpaint_full_res = flags & 2;
  r.mask_round = flags & 4;
  static const char* kModes[] = {"resize", "crop", "fill"};
  r.resize_mode = kModes[(flags >> 3) % 3];
  static const char* kContent[] = {"fill", "original", "latent-noise", "latent-nothing"};
  r.masked_content = kContent[(flags >> 5) % 4];
  r.mask_blur = float(in.byte() % 9);
  if (in.byte() % 2) r.mask_blur_y = float(in.byte() % 9);
  r.inpaint_padding = in.byte();

  sdc::io::Image init(iw, ih), mask(mw, mh);
  for (uint8_t& v : init.rgb) v = in.byte();
  for (uint8_t& v : mask.rgb) v = in.byte();
  if (flags & 0x80) {
    mask.alpha.resize(size_t(mw) * size_t(mh));
    for (uint8_t& v : mask.alpha) v = in.byte();
  }
  try {
    const auto p = sdc::pipeline::prepare_a1111_inpaint(init, mask, r);
    if (!p) return 0;  // "Only masked" with a blank mask
    if (p->image.width != r.width || p->image.height != r.height || p->mask.width != r.width ||
        p->mask.height != r.height)
      std::abort();
    if (p->paste_to) {
      const auto& c = *p->paste_to;
      if (c.x1 < 0 || c.y1 < 0 || c.x2 > iw || c.y2 > ih || c.width() <= 0 || c.height() <= 0)
        std::abort();
    }
    sdc::io::Image generated(r.width, r.height);
    std::fill(generated.rgb.begin(), generated.rgb.end(), uint8_t(77));
    const sdc::io::Image out = sdc::pipeline::finish_a1111_inpaint(generated, *p);
    const int ow = r.inpaint_full_res ? iw : r.width, oh = r.inpaint_full_res ? ih : r.height;
    if (out.width != ow || out.height != oh || out.rgb.size() != size_t(ow) * size_t(oh) * 3)
      std::abort();
    const auto nmask =
        sdc::imaging::a1111_latent_mask(p->mask, r.width / 8, r.height / 8, r.mask_round);
    for (float v : nmask)
      if (!(v >= 0.0f && v <= 1.0f)) std::abort();
  } catch (const sdc::Error&) {
  }
  return 0;
}
