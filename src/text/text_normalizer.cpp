// CLIP/ftfy text clean-up. Each function mirrors one ftfy fixer (ftfy 6, fixes.py / chardata.py);
// the loop in fix_segment mirrors ftfy.fix_and_explain. Unicode data comes from ICU.
#include "text/text_normalizer.h"

#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <array>
#include <string>

#include "common/error.h"
#include "text/html_entities.h"
#include "text/unicode_text.h"

namespace sdc::text {

namespace {

// ftfy splits fix_text's input into segments of at most this many code points.
constexpr size_t kMaxDecodeLength = 1000000;

icu::UnicodeString to_icu(std::u32string_view s) {
  return icu::UnicodeString::fromUTF32(reinterpret_cast<const UChar32*>(s.data()),
                                       static_cast<int32_t>(s.size()));
}

std::u32string from_icu(const icu::UnicodeString& s) {
  std::u32string out(static_cast<size_t>(s.length()), U'\0');
  UErrorCode status = U_ZERO_ERROR;
  const int32_t n = s.toUTF32(reinterpret_cast<UChar32*>(out.data()), s.length(), status);
  if (U_FAILURE(status))
    throw Error("ICU: UTF-16 to UTF-32 conversion failed: " + std::string(u_errorName(status)));
  out.resize(static_cast<size_t>(n));
  return out;
}

const icu::Normalizer2& normalizer(bool compat) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n =
      compat ? icu::Normalizer2::getNFKCInstance(status) : icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status) || !n)
    throw Error("ICU: cannot load the NFC/NFKC normalizer: " + std::string(u_errorName(status)));
  return *n;
}

std::u32string nfc(std::u32string_view text) {
  const auto& n = normalizer(false);
  const icu::UnicodeString s = to_icu(text);
  UErrorCode status = U_ZERO_ERROR;
  if (n.isNormalized(s, status) && U_SUCCESS(status)) return std::u32string(text);
  status = U_ZERO_ERROR;
  const icu::UnicodeString out = n.normalize(s, status);
  if (U_FAILURE(status))
    throw Error("ICU: NFC normalization failed: " + std::string(u_errorName(status)));
  return from_icu(out);
}

// Windows-1252 as ftfy's "sloppy-windows-1252" decodes bytes 0x80..0x9F: the five bytes that
// Windows-1252 leaves undefined keep their Latin-1 meaning.
constexpr char32_t kSloppyCp1252[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,  // 80..87
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,  // 88..8F
    0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,  // 90..97
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,  // 98..9F
};

bool ascii_alnum(char32_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

int hex_value(char32_t c) {
  if (c >= '0' && c <= '9') return static_cast<int>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<int>(c - 'a' + 10);
  if (c >= 'A' && c <= 'F') return static_cast<int>(c - 'A' + 10);
  return -1;
}

// html.unescape of a whole "&#...;" reference into `out`; false when html.unescape would not
// consume the whole reference (ftfy then keeps the text as it was).
bool decode_numeric_reference(std::u32string_view body, std::u32string& out) {
  // body is what lies between "&#" and ";".
  const bool hex = !body.empty() && (body[0] == 'x' || body[0] == 'X');
  const std::u32string_view digits = hex ? body.substr(1) : body;
  if (digits.empty()) return false;
  constexpr unsigned long kTooBig = 0x110000;
  unsigned long value = 0;
  for (char32_t c : digits) {
    const int d = hex ? hex_value(c) : (c >= '0' && c <= '9' ? static_cast<int>(c - '0') : -1);
    if (d < 0) return false;  // html.unescape would stop early and leave the ';'
    value = std::min(kTooBig, value * (hex ? 16 : 10) + static_cast<unsigned long>(d));
  }
  const auto c = static_cast<char32_t>(value);
  out.clear();
  if (value == 0x00) {
    out = U"\uFFFD";
  } else if (value == 0x0D) {
    out = U"\r";
  } else if (value >= 0x80 && value <= 0x9F) {
    out.push_back(kSloppyCp1252[value - 0x80]);
  } else if ((value >= 0xD800 && value <= 0xDFFF) || value >= kTooBig) {
    out = U"\uFFFD";
  } else if ((value >= 0x01 && value <= 0x08) || value == 0x0B ||
             (value >= 0x0E && value <= 0x1F) || value == 0x7F ||
             (value >= 0xFDD0 && value <= 0xFDEF) || (value & 0xFFFE) == 0xFFFE) {
    // html's _invalid_codepoints: dropped.
  } else {
    out.push_back(c);
  }
  // ftfy: "If html.unescape only decoded part of the string ... the semicolon should be consumed."
  return out.find(U';') == std::u32string::npos;
}

// The value of a named reference such as "&amp;", if ftfy knows it.
bool find_entity(std::u32string_view name, std::u32string& value) {
  std::string key;  // entity names are ASCII; the table is UTF-8
  key.reserve(name.size());
  for (char32_t c : name) key.push_back(c < 0x80 ? static_cast<char>(c) : '?');
  const auto table = html_entities();
  const auto it =
      std::lower_bound(table.begin(), table.end(), key,
                       [](const HtmlEntity& e, const std::string& k) { return e.name < k; });
  if (it == table.end() || it->name != key) return false;
  value = utf8_to_u32(it->value, "HTML entity table");
  return true;
}

std::u32string fix_c1_controls(std::u32string_view text) {
  std::u32string out(text);
  for (char32_t& c : out)
    if (c >= 0x80 && c <= 0x9F) c = kSloppyCp1252[c - 0x80];
  return out;
}

std::u32string fix_latin_ligatures(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    switch (c) {
      case 0x0132:
        out += U"IJ";
        break;
      case 0x0133:
        out += U"ij";
        break;
      case 0x0149:
        out += U"\u02BCn";
        break;
      case 0x01C4:
        out += U"D\u017D";
        break;
      case 0x01C5:
        out += U"D\u017E";
        break;
      case 0x01C6:
        out += U"d\u017E";
        break;
      case 0x01C7:
        out += U"LJ";
        break;
      case 0x01C8:
        out += U"Lj";
        break;
      case 0x01C9:
        out += U"lj";
        break;
      case 0x01CA:
        out += U"NJ";
        break;
      case 0x01CB:
        out += U"Nj";
        break;
      case 0x01CC:
        out += U"nj";
        break;
      case 0x01F1:
        out += U"DZ";
        break;
      case 0x01F2:
        out += U"Dz";
        break;
      case 0x01F3:
        out += U"dz";
        break;
      case 0xFB00:
        out += U"ff";
        break;
      case 0xFB01:
        out += U"fi";
        break;
      case 0xFB02:
        out += U"fl";
        break;
      case 0xFB03:
        out += U"ffi";
        break;
      case 0xFB04:
        out += U"ffl";
        break;
      case 0xFB05:
        out += U"\u017Ft";
        break;
      case 0xFB06:
        out += U"st";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

// ftfy's WIDTH_MAP: U+3000 -> ' ', and each of U+FF01..U+FFEF -> its NFKC form where that differs.
std::u32string fix_character_width(std::u32string_view text) {
  static const std::array<std::u32string, 0xFFF0 - 0xFF01> kWidthMap = [] {
    std::array<std::u32string, 0xFFF0 - 0xFF01> map;
    const auto& nfkc = normalizer(true);
    for (char32_t c = 0xFF01; c < 0xFFF0; ++c) {
      UErrorCode status = U_ZERO_ERROR;
      const icu::UnicodeString folded =
          nfkc.normalize(icu::UnicodeString(static_cast<UChar32>(c)), status);
      if (U_FAILURE(status))
        throw Error("ICU: NFKC normalization failed: " + std::string(u_errorName(status)));
      std::u32string alt = from_icu(folded);
      if (alt != std::u32string(1, c)) map[c - 0xFF01] = std::move(alt);
    }
    return map;
  }();
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (c == 0x3000) {
      out.push_back(U' ');
    } else if (c >= 0xFF01 && c < 0xFFF0 && !kWidthMap[c - 0xFF01].empty()) {
      out += kWidthMap[c - 0xFF01];
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::u32string uncurl_quotes(std::u32string_view text) {
  std::u32string out(text);
  for (char32_t& c : out) {
    if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B))
      c = U'\'';
    else if (c >= 0x201C && c <= 0x201F)
      c = U'"';
  }
  return out;
}

std::u32string fix_line_breaks(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c == U'\r') {
      out.push_back(U'\n');
      if (i + 1 < text.size() && text[i + 1] == U'\n') ++i;  // CRLF -> LF
    } else if (c == 0x2028 || c == 0x2029 || c == 0x0085) {
      out.push_back(U'\n');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// ANSI_RE = "\033\[((?:\d|;)*)([a-zA-Z])" (\d: any decimal digit, as Python's re on str).
std::u32string remove_terminal_escapes(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == 0x1B && i + 1 < text.size() && text[i + 1] == U'[') {
      size_t j = i + 2;
      while (j < text.size() && (text[j] == U';' || py_decimal_value(text[j]) >= 0)) ++j;
      if (j < text.size() && text[j] < 0x80 && is_letter(text[j])) {
        i = j + 1;
        continue;
      }
    }
    out.push_back(text[i++]);
  }
  return out;
}

bool is_removed_control(char32_t c) {
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
         (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

std::u32string remove_control_chars(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text)
    if (!is_removed_control(c)) out.push_back(c);
  return out;
}

// ftfy.fix_and_explain for one segment: apply every fixer in ftfy's order until nothing changes.
std::u32string fix_segment(std::u32string_view segment, bool unescape) {
  std::u32string text(segment);
  // Every pass that changes something either shortens the text (entities, escapes, controls) or
  // maps characters to forms the fixers leave alone, so this settles within a few passes; the
  // bound only turns a logic error into a clear message instead of a hang.
  const size_t max_passes = text.size() + 16;
  for (size_t pass = 0; pass < max_passes; ++pass) {
    std::u32string before = text;
    if (unescape) text = unescape_html(text);
    text = fix_c1_controls(text);
    text = fix_latin_ligatures(text);
    text = fix_character_width(text);
    text = uncurl_quotes(text);
    text = fix_line_breaks(text);
    // fix_surrogates: decoded UTF-8 holds no surrogates.
    text = remove_terminal_escapes(text);
    text = remove_control_chars(text);
    text = nfc(text);
    if (text == before) return text;
  }
  throw Error("prompt", "text clean-up", "a stable result",
              "no fixed point after " + std::to_string(max_passes) + " passes");
}

}  // namespace

std::u32string unescape_html(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == U'&') {
      // HTML_ENTITY_RE = "&#?[0-9A-Za-z]{1,24};"
      const size_t name_start = i + 1 + ((i + 1 < text.size() && text[i + 1] == U'#') ? 1 : 0);
      size_t j = name_start;
      while (j < text.size() && j - name_start < 24 && ascii_alnum(text[j])) ++j;
      if (j > name_start && j < text.size() && text[j] == U';') {
        const std::u32string_view entity = text.substr(i, j + 1 - i);
        std::u32string decoded;
        if (find_entity(entity, decoded) ||
            (name_start == i + 2 &&
             decode_numeric_reference(text.substr(name_start, j - name_start), decoded))) {
          out += decoded;
          i = j + 1;
          continue;
        }
        out += entity;  // left as it was; the match is consumed (re.sub does not rescan it)
        i = j + 1;
        continue;
      }
    }
    out.push_back(text[i++]);
  }
  return out;
}

std::u32string fix_text(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  bool unescape = true;  // ftfy's unescape_html="auto"
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find(U'\n', pos);
    size_t end = nl == std::u32string_view::npos ? text.size() : nl + 1;
    if (end - pos > kMaxDecodeLength) end = pos + kMaxDecodeLength;
    const std::u32string_view segment = text.substr(pos, end - pos);
    // Once a segment shows a '<' the text may be HTML: stop decoding entities from there on.
    if (unescape && segment.find(U'<') != std::u32string_view::npos) unescape = false;
    out += fix_segment(segment, unescape);
    pos = end;
  }
  return out;
}

std::u32string whitespace_clean(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  bool pending_space = false;
  for (char32_t c : text) {
    if (py_isspace(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(U' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

std::u32string lower(std::u32string_view text) {
  if (std::all_of(text.begin(), text.end(), [](char32_t c) { return c < 0x80; })) {
    std::u32string out(text);
    for (char32_t& c : out)
      if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
    return out;
  }
  icu::UnicodeString s = to_icu(text);
  s.toLower(icu::Locale::getRoot());
  return from_icu(s);
}

std::u32string clip_clean_text(std::u32string_view text) {
  return lower(whitespace_clean(fix_text(text)));
}

}  // namespace sdc::text
