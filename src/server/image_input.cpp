// decode_request_image: data-URL stripping, bounded base64, header-checked decoding.
#include "server/image_input.h"

#include "common/error.h"
#include "server/base64.h"
#include "server/json_response.h"

namespace sdc::server {

io::Image decode_request_image(const std::string& text, const std::string& field,
                               const RequestLimits& limits) {
  std::string_view b64 = text;
  if (b64.rfind("data:", 0) == 0) {
    const size_t comma = b64.find(',');
    if (comma == std::string_view::npos ||
        b64.substr(0, comma).find(";base64") == std::string::npos)
      throw ValidationError({"body", field}, "a data URL must be base64 (data:image/png;base64,…)",
                            "value_error.image");
    b64.remove_prefix(comma + 1);
  }
  // Compressed images are far smaller than their pixels; 4 bytes per pixel at the largest size
  // is a generous bound on what a legitimate file needs.
  const size_t max_bytes = size_t(limits.max_image_side) * size_t(limits.max_image_side) * 4;
  const auto bytes = base64_decode(b64, max_bytes);
  if (!bytes || bytes->empty())
    throw ValidationError({"body", field}, "Invalid encoded image: not base64 of a PNG or JPEG",
                          "value_error.image");
  io::ImageLimits il;
  il.max_side = limits.max_image_side;
  il.max_pixels = int64_t(limits.max_image_side) * limits.max_image_side;
  try {
    return io::decode_image(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size(), field,
                            il);
  } catch (const Error& e) {
    throw ValidationError({"body", field}, std::string("Invalid encoded image: ") + e.what(),
                          "value_error.image");
  }
}

}  // namespace sdc::server
