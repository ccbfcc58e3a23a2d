// Code-point level text helpers for the prompt path: strict UTF-8 decoding and encoding, and the
// character classes that Python's `re` and the `regex` module use in CLIP's and A1111's patterns
// (so the C++ matchers agree with the reference implementations character by character).
#pragma once

#include <string>
#include <string_view>

namespace sdc::text {

// Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF). Bad input throws
// sdc::Error naming `source` (e.g. "prompt") and the byte offset.
std::u32string utf8_to_u32(std::string_view text, std::string_view source = "prompt");
std::string u32_to_utf8(std::u32string_view text);
void append_utf8(std::string& out, char32_t c);

// Python str.isspace() / `\s` of `re` on str: bidirectional class WS, B or S, or category Zs.
bool py_isspace(char32_t c);
// `\w` of Python `re` on str: alphabetic, numeric (any numeric type) or '_'.
bool py_isword(char32_t c);
// `\d` of Python `re` on str: general category Nd. Its value 0..9, or -1.
int py_decimal_value(char32_t c);

// The classes of CLIP's pattern (`regex` module): \p{L}, \p{N} and `\s` (White_Space).
bool is_letter(char32_t c);
bool is_number(char32_t c);
bool is_unicode_space(char32_t c);

}  // namespace sdc::text
