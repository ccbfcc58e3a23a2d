// Base64 and request-image decoding.
#include "server/a1111/image_base64.h"

#include <array>
#include <cctype>

#include "common/error.h"
#include "server/a1111/api_error.h"

namespace sdc::server::a1111 {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

const std::array<int8_t, 256>& decode_table() {
  static const std::array<int8_t, 256> table = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    for (int i = 0; i < 64; ++i) t[(unsigned char)kAlphabet[i]] = int8_t(i);
    return t;
  }();
  return table;
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower((unsigned char)s[i]) != prefix[i]) return false;
  return true;
}

ApiError invalid_image(const std::string& reason) {
  return ApiError(500, "HTTPException", "Invalid encoded image", reason);
}

}  // namespace

std::string encode_base64(const uint8_t* data, size_t size) {
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    const uint32_t v = uint32_t(data[i]) << 16 | uint32_t(data[i + 1]) << 8 | data[i + 2];
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (size - i == 1) {
    const uint32_t v = uint32_t(data[i]) << 16;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (size - i == 2) {
    const uint32_t v = uint32_t(data[i]) << 16 | uint32_t(data[i + 1]) << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string encode_base64(const std::vector<uint8_t>& bytes) {
  return encode_base64(bytes.data(), bytes.size());
}

std::optional<std::vector<uint8_t>> decode_base64(std::string_view text) {
  const auto& table = decode_table();
  std::vector<uint8_t> out;
  out.reserve(text.size() / 4 * 3 + 3);
  uint32_t acc = 0;
  int bits = 0, chars = 0;
  bool padded = false;
  for (char ch : text) {
    if (ch == '=') {
      padded = true;
      continue;
    }
    const int v = table[(unsigned char)ch];
    if (v < 0) continue;              // line breaks, spaces: skipped, as binascii does
    if (padded) return std::nullopt;  // data after the padding
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    ++chars;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(uint8_t((acc >> bits) & 0xff));
    }
  }
  if (chars % 4 == 1) return std::nullopt;
  return out;
}

std::string_view strip_data_url(std::string_view text) {
  if (!starts_with_ci(text, "data:")) return text;
  const size_t comma = text.find(',');
  if (comma == std::string_view::npos) return text.substr(text.size());
  return text.substr(comma + 1);
}

std::vector<uint8_t> request_image_bytes(std::string_view text, const std::string& field) {
  if (starts_with_ci(text, "http://") || starts_with_ci(text, "https://"))
    throw ApiError(500, "HTTPException", "Requests not allowed",
                   field + ": sdc does not fetch image URLs; send the image as base64");
  const bool data_url = starts_with_ci(text, "data:");
  if (data_url && text.find(";base64,") == std::string_view::npos)
    throw invalid_image(field + ": expected a base64 data URL (data:image/png;base64,...)");
  auto bytes = decode_base64(strip_data_url(text));
  if (!bytes) throw invalid_image(field + ": not valid base64");
  if (bytes->empty()) throw invalid_image(field + ": empty image");
  return std::move(*bytes);
}

io::Image decode_request_image(std::string_view text, const std::string& field,
                               const io::ImageLimits& limits) {
  const std::vector<uint8_t> bytes = request_image_bytes(text, field);
  try {
    return io::decode_image(bytes.data(), bytes.size(), field, limits);
  } catch (const Error& e) {
    throw invalid_image(e.what());
  }
}

}  // namespace sdc::server::a1111
