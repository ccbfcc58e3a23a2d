// Images that arrive inside JSON bodies (init images, ControlNet hints): raw base64 or a data URL
// ("data:image/png;base64,…"), PNG or JPEG. The decoded size is bounded before base64 decoding
// and the image dimensions are checked from the header before any pixel memory is allocated
// (a 100 000 × 100 000 PNG of a few kilobytes is refused, not allocated).
#pragma once

#include <string>

#include "io/image.h"
#include "server/server_options.h"

namespace sdc::server {

// Throws ValidationError (loc {"body", field}) for text that is not base64 / a data URL, bytes
// that are not a complete PNG or JPEG, or dimensions beyond limits.max_image_side.
io::Image decode_request_image(const std::string& text, const std::string& field,
                               const RequestLimits& limits);

}  // namespace sdc::server
