// POST /sdapi/v1/png-info: the "parameters" text of an image read back as A1111's
// parse_generation_parameters does (modules/infotext_utils.py): the last line holds the fields
// when the field pattern matches at least three times there; lines before "Negative prompt:"
// are the prompt; quoted values are JSON strings; "WxH" values split into "Key-1"/"Key-2"; the
// defaults A1111 adds for absent fields are added. Values are strings, as A1111 returns them.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace sdc::server::a1111 {

// A1111's parse_generation_parameters(text) as a JSON object.
nlohmann::json parse_generation_parameters(const std::string& text);

// The response for the bytes of an image: {info, items, parameters}. "items" holds the PNG's
// other text chunks. A JPEG (no PNG text) gives empty info. Throws ApiError 500 "Invalid encoded
// image" for bytes that are neither PNG nor JPEG.
nlohmann::json png_info_response(const std::vector<uint8_t>& image_bytes);

}  // namespace sdc::server::a1111
