// UTF-8 codec and Python-compatible character classes, on top of ICU's character properties.
#include "text/unicode_text.h"

#include <unicode/uchar.h>

#include <cstdio>

#include "common/error.h"

namespace sdc::text {

namespace {

[[noreturn]] void bad_utf8(std::string_view source, std::string_view text, size_t at) {
  char found[64];
  std::snprintf(found, sizeof found, "byte 0x%02X at byte offset %zu",
                static_cast<unsigned>(static_cast<unsigned char>(text[at])), at);
  throw Error(std::string(source), "text", "valid UTF-8", found);
}

}  // namespace

std::u32string utf8_to_u32(std::string_view text, std::string_view source) {
  std::u32string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char b0 = static_cast<unsigned char>(text[i]);
    if (b0 < 0x80) {
      out.push_back(b0);
      ++i;
      continue;
    }
    int extra;
    char32_t c, min;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      extra = 1, c = b0 & 0x1F, min = 0x80;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      extra = 2, c = b0 & 0x0F, min = 0x800;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      extra = 3, c = b0 & 0x07, min = 0x10000;
    } else {
      bad_utf8(source, text, i);
    }
    if (i + extra >= text.size()) bad_utf8(source, text, i);  // the sequence is cut off
    for (int k = 1; k <= extra; ++k) {
      const unsigned char b = static_cast<unsigned char>(text[i + k]);
      if ((b & 0xC0) != 0x80) bad_utf8(source, text, i + k);
      c = (c << 6) | (b & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) bad_utf8(source, text, i);
    out.push_back(c);
    i += extra + 1;
  }
  return out;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string u32_to_utf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) append_utf8(out, c);
  return out;
}

bool py_isspace(char32_t c) {
  if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
  const auto dir = u_charDirection(static_cast<UChar32>(c));
  return dir == U_WHITE_SPACE_NEUTRAL || dir == U_BLOCK_SEPARATOR || dir == U_SEGMENT_SEPARATOR ||
         u_charType(static_cast<UChar32>(c)) == U_SPACE_SEPARATOR;
}

bool py_isword(char32_t c) {
  if (c < 0x80)
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  const auto uc = static_cast<UChar32>(c);
  return is_letter(c) || u_getIntPropertyValue(uc, UCHAR_NUMERIC_TYPE) != U_NT_NONE;
}

int py_decimal_value(char32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') ? static_cast<int>(c - '0') : -1;
  const auto uc = static_cast<UChar32>(c);
  return u_charType(uc) == U_DECIMAL_DIGIT_NUMBER ? u_charDigitValue(uc) : -1;
}

bool is_letter(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_L_MASK) != 0;
}

bool is_number(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_N_MASK) != 0;
}

bool is_unicode_space(char32_t c) {
  return u_isUWhiteSpace(static_cast<UChar32>(c));
}

}  // namespace sdc::text
