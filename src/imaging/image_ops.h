// Image operations of the pipeline: 8-bit images ⇄ float NCHW tensors, alpha flattening,
// high-quality resizing, and A1111's three ways of fitting an init image to the generation size.
//
// Conversions follow diffusers' VaeImageProcessor exactly (float32 arithmetic, same order):
//   - to [0,1]  (ControlNet hint):  x / 255
//   - to [-1,1] (VAE encoder input): 2 · (x / 255) − 1
//   - from the VAE decoder output:  u = clamp(x / 2 + 0.5, 0, 1), then round(u · 255) with
//     round-half-to-even (numpy's round in numpy_to_pil); NaN becomes 0.
// Resizing reproduces PIL's Image.resize(..., LANCZOS / BICUBIC) bit for bit: a separable filter
// whose support widens by the scale when shrinking (antialiasing), coefficients normalised and
// fixed to 22 fractional bits, 8-bit rounding between the two passes — so A1111's img2img
// preprocessing is reproduced exactly.
#pragma once

#include <string>
#include <vector>

#include "io/image.h"

namespace sdc::imaging {

// ---- tensors ---------------------------------------------------------------------------------

// One image as a 1×3×H×W float tensor (planes R, G, B). `out` must hold 3·W·H floats; the
// vector forms allocate it. The image's alpha is ignored (flatten_alpha first if it matters).
void image_to_unit_tensor(const io::Image& image, float* out);
void image_to_signed_tensor(const io::Image& image, float* out);
std::vector<float> image_to_unit_tensor(const io::Image& image);    // [0,1]
std::vector<float> image_to_signed_tensor(const io::Image& image);  // [-1,1]

// A 3×H×W tensor back to 8 bits: values in [0,1] (unit) or the VAE decoder's [-1,1] (signed).
// Values outside the range are clamped.
io::Image image_from_unit_tensor(const float* chw, int width, int height);
io::Image image_from_signed_tensor(const float* chw, int width, int height);
// The same as A1111 converts a decoded image: clamp((x + 1) / 2, 0, 1) * 255 in float32,
// truncated to 8 bits (numpy astype(uint8)) instead of rounded.
io::Image image_from_signed_tensor_truncated(const float* chw, int width, int height);

// ---- alpha -----------------------------------------------------------------------------------

// Composites the image over a solid colour and drops the alpha, as A1111's images.flatten does for
// img2img inputs (default background white): c = (bg·(255−a) + c·a) / 255, rounded as PIL does.
// An image without alpha is left unchanged.
void flatten_alpha(io::Image& image, uint8_t r = 255, uint8_t g = 255, uint8_t b = 255);

// ---- resizing --------------------------------------------------------------------------------

// The source rectangle of a resize, in source pixels (PIL's `box`); may be fractional or empty
// (zero width or height: the output then repeats a blend of the nearest source pixels).
struct SourceBox {
  double x0, y0, x1, y1;
};

// PIL's resampling filters: Lanczos-3 (its LANCZOS) and Keys' cubic with a = −0.5 (its BICUBIC,
// the default of Image.resize).
enum class Filter { Lanczos, Bicubic };

// PIL's Image.resize((width, height), filter[, box]). The result has no alpha.
io::Image resize(const io::Image& image, int width, int height, Filter filter = Filter::Lanczos);
io::Image resize(const io::Image& image, int width, int height, const SourceBox& box,
                 Filter filter = Filter::Lanczos);

// A1111's img2img resize modes (its resize_mode 0, 1, 2), used when the init image's size differs
// from the generation size:
//   Resize — "Just resize": stretch to width×height.
//   Crop   — "Crop and resize" (the default): scale to cover width×height keeping the aspect
//            ratio, centre, cut off what sticks out.
//   Fill   — "Resize and fill": scale to fit inside keeping the aspect ratio, centre, and fill the
//            two empty bands by stretching the image's outermost rows (or columns) outwards: each
//            band is a resize of a zero-height (zero-width) box at the edge, i.e. a blend of the
//            two edge rows repeated. A1111 does exactly this with PIL and passes no filter there,
//            so the bands use PIL's default, bicubic. With odd margins the last row or column
//            stays black, as in A1111.
enum class ResizeMode { Resize, Crop, Fill };
const char* resize_mode_name(ResizeMode mode);  // "resize", "crop", "fill"
// Accepts "resize", "crop", "fill" and A1111's labels ("Just resize", "Crop and resize",
// "Resize and fill"); throws sdc::UsageError otherwise.
ResizeMode parse_resize_mode(const std::string& name);

// A1111's images.resize_image(mode, image, width, height) with the default upscaler (Lanczos).
// Returns a width×height image (a plain copy when the size already matches). Throws sdc::Error
// when the aspect ratio is so extreme that a side would scale to zero pixels.
io::Image fit_image(const io::Image& image, int width, int height, ResizeMode mode);

}  // namespace sdc::imaging
