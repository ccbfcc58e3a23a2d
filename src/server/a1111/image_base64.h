// Images in A1111 request and response bodies. A request image is raw base64 or a data URL
// ("data:image/png;base64,…"), decoded as A1111's decode_base64_to_image does: characters
// outside the base64 alphabet (line breaks, spaces) are skipped, then the bytes must be a PNG or
// JPEG whose header size is within the limits — checked before any pixel memory is allocated, so
// a small file claiming a huge image (a decode bomb) costs nothing. URLs are refused: nothing a
// request sends makes sdc fetch anything. Response images are raw base64 (no data: prefix).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/image.h"

namespace sdc::server::a1111 {

// Standard base64 with '=' padding.
std::string encode_base64(const uint8_t* data, size_t size);
std::string encode_base64(const std::vector<uint8_t>& bytes);
// Non-alphabet characters are skipped; missing padding is tolerated. nullopt for a length that
// cannot be base64 (one character left over) or data after the padding.
std::optional<std::vector<uint8_t>> decode_base64(std::string_view text);

// The payload of a data URL ("data:image/png;base64,XXXX" → "XXXX"), or `text` itself.
std::string_view strip_data_url(std::string_view text);

// Decodes a request image. `field` names it in errors ("init_images[0]"). Throws ApiError: 500
// "Requests not allowed" for http(s) URLs, 500 "Invalid encoded image" (A1111's status and
// detail) with the precise reason in "errors" for anything else that is not a valid image
// within `limits`.
io::Image decode_request_image(std::string_view text, const std::string& field,
                               const io::ImageLimits& limits);

// The raw bytes of a request image (for /png-info, which reads its text chunks); same errors.
std::vector<uint8_t> request_image_bytes(std::string_view text, const std::string& field);

}  // namespace sdc::server::a1111
