// Inpainting mask preparation (diffusers' conventions; A1111's invert and blur).
#include "imaging/inpaint_mask.h"

#include <algorithm>
#include <string>

#include "common/error.h"
#include "imaging/canny.h"
#include "imaging/image_ops.h"

namespace sdc::imaging {

bool InpaintMask::all_zero() const {
  return std::all_of(pixels.begin(), pixels.end(), [](float v) { return v == 0.0f; });
}

InpaintMask prepare_inpaint_mask(const io::Image& image, int width, int height, bool invert,
                                 float blur_sigma) {
  if (width % 8 != 0 || height % 8 != 0 || width <= 0 || height <= 0)
    throw Error("mask", "size", "multiples of 8",
                std::to_string(width) + "x" + std::to_string(height));
  io::Image sized = image.width == width && image.height == height
                        ? image
                        : resize(image, width, height, Filter::Lanczos);
  sized.alpha.clear();
  // PIL's RGB -> L (ImagingConvert rgb2l), then A1111's invert; kept as a grey RGB image so the
  // blur works on it as on any image.
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      uint8_t* p = sized.pixel(x, y);
      unsigned l = (19595u * p[0] + 38470u * p[1] + 7471u * p[2] + 0x8000u) >> 16;
      if (invert) l = 255u - l;
      p[0] = p[1] = p[2] = uint8_t(l);
    }
  // A1111 blurs with cv2.GaussianBlur and a kernel of 2·int(2.5σ + 0.5) + 1 taps.
  if (blur_sigma > 0) sized = gaussian_blur(sized, blur_sigma, int(2.5 * double(blur_sigma) + 0.5));
  InpaintMask m;
  m.width = width;
  m.height = height;
  m.pixels.resize(size_t(width) * size_t(height));
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      m.pixels[size_t(y) * size_t(width) + size_t(x)] = sized.pixel(x, y)[0] >= 128 ? 1.0f : 0.0f;
  const int lh = height / 8, lw = width / 8;
  m.latent.resize(size_t(lh) * size_t(lw));
  for (int i = 0; i < lh; ++i)
    for (int j = 0; j < lw; ++j)
      m.latent[size_t(i) * size_t(lw) + size_t(j)] =
          m.pixels[size_t(8 * i) * size_t(width) + size_t(8 * j)];
  return m;
}

std::vector<float> masked_image(const std::vector<float>& init_signed, const InpaintMask& mask) {
  const size_t plane = size_t(mask.width) * size_t(mask.height);
  if (init_signed.size() != 3 * plane)
    throw Error("masked image", "size", std::to_string(3 * plane) + " values (3 planes)",
                std::to_string(init_signed.size()));
  std::vector<float> out(init_signed.size());
  for (size_t c = 0; c < 3; ++c)
    for (size_t k = 0; k < plane; ++k)
      out[c * plane + k] = mask.pixels[k] < 0.5f ? init_signed[c * plane + k] : 0.0f;
  return out;
}

}  // namespace sdc::imaging
