// CLIP's text clean-up before BPE, as transformers' CLIPTokenizer does it with ftfy installed
// (the configuration the reference fixtures were made with):
//   whitespace_clean(ftfy.fix_text(text)).lower()
// fix_text follows ftfy 6's default configuration step by step (HTML entities unless the line
// shows a '<', C1 controls read as Windows-1252, Latin ligatures, full/half-width forms, curly
// quotes, line breaks, terminal escapes, control characters, NFC; repeated until nothing changes),
// EXCEPT ftfy's mojibake repair (`fix_encoding`: heuristically re-decoding text such as "cafÃ©"
// that was decoded with the wrong codec). Well-formed prompts never trigger that repair.
#pragma once

#include <string>
#include <string_view>

namespace sdc::text {

// ftfy.fix_text(text) with the default configuration, without the mojibake repair.
std::u32string fix_text(std::u32string_view text);

// ftfy's unescape_html for one segment: named HTML5 references ending in ';' (plus ftfy's
// upper-cased forms) and numeric references "&#65;" / "&#x41;" with html.unescape's rules.
std::u32string unescape_html(std::u32string_view text);

// `re.sub(r"\s+", " ", text).strip()` with Python's Unicode whitespace.
std::u32string whitespace_clean(std::u32string_view text);

// Python str.lower() (full case mapping, final sigma), via ICU's root locale.
std::u32string lower(std::u32string_view text);

// The whole CLIP clean-up: lower(whitespace_clean(fix_text(text))).
std::u32string clip_clean_text(std::u32string_view text);

}  // namespace sdc::text
