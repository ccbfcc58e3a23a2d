// Internal to the image reader (image.cpp, png_io.cpp, jpeg_io.cpp): the per-format decoders, the
// size check they share, and the EXIF orientation helpers. Not part of the io contract.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "io/image.h"

namespace sdc::io::detail {

// Throws sdc::Error naming `name` unless width × height is within `limits`. Called with the
// header's size before anything is allocated.
void check_image_size(int64_t width, int64_t height, const ImageLimits& limits,
                      const std::string& name);

// Decoders; `data` starts with the format's magic. The result is upright (EXIF applied).
Image decode_png(const uint8_t* data, size_t size, const std::string& name,
                 const ImageLimits& limits);
Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name,
                  const ImageLimits& limits);

// The orientation (1…8) stored in an EXIF block: a TIFF header ("II*\0" or "MM\0*"), optionally
// preceded by "Exif\0\0". Returns 1 when there is none or when the block is malformed: a bad
// EXIF block must not make an otherwise good image unreadable (PIL ignores it too).
int exif_orientation(const uint8_t* data, size_t size);

// Turns `image` upright for an EXIF orientation (1 = as stored, 6 = rotate 90° clockwise, …).
void apply_exif_orientation(Image& image, int orientation);

}  // namespace sdc::io::detail
