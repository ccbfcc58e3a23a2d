// Base64 (RFC 4648, standard alphabet) for images in JSON bodies and basic-auth credentials.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sdc::server {

std::string base64_encode(std::string_view bytes);
// Strict decoding: whitespace (line breaks from some clients) is skipped, '=' padding optional
// at the end only, any other character outside the alphabet → nullopt. Decodes at most
// `max_bytes` (larger inputs → nullopt before allocating their size).
std::optional<std::string> base64_decode(std::string_view text, size_t max_bytes = SIZE_MAX);

}  // namespace sdc::server
