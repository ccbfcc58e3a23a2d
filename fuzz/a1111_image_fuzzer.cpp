// libFuzzer target: request images as A1111 clients send them — raw base64 or a data URL of
// PNG/JPEG bytes. Decoding must give an image within the limits (sizes checked from the header
// before any pixel memory) or throw ApiError; /png-info's reading of the same bytes likewise.
// Base64 must round-trip any bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "server/a1111/api_error.h"
#include "server/a1111/image_base64.h"
#include "server/a1111/png_info.h"

using namespace sdc::server::a1111;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> bytes(data, data + size);
  const std::string encoded = encode_base64(bytes);
  if (decode_base64(encoded) != bytes) std::abort();
  sdc::io::ImageLimits limits;
  limits.max_side = 512;
  limits.max_pixels = 512 * 512;
  // The bytes as an image file, base64 in a data URL; then the bytes as the text itself.
  for (const std::string& text : {"data:image/png;base64," + encoded,
                                  std::string(reinterpret_cast<const char*>(data), size)}) {
    try {
      const sdc::io::Image img = decode_request_image(text, "init_images[0]", limits);
      if (img.width < limits.min_side || img.width > limits.max_side ||
          int64_t(img.width) * img.height > limits.max_pixels ||
          img.rgb.size() != size_t(img.width) * img.height * 3)
        std::abort();
    } catch (const ApiError&) {
    }
  }
  try {
    (void)png_info_response(bytes).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } catch (const ApiError&) {
  }
  return 0;
}
