// The named HTML character references that ftfy 6 decodes (its chardata.HTML_ENTITIES): every
// HTML5 name that ends in ';', plus the ASCII-uppercased form of each all-lower-case name that is
// not already an entity (so "&NTILDE;" gives "Ñ"). html_entities.cpp is generated from Python's
// html.entities.html5; regenerate it with this snippet (prints the file to stdout):
//
//   import html, html.entities
//   ents = {}
//   for name, ch in html.entities.html5.items():
//       if name.endswith(";"):
//           ents["&" + name] = ch
//           if name == name.lower() and html.unescape("&" + name.upper()) == "&" + name.upper():
//               ents["&" + name.upper()] = ch.upper()
//   # then print {"&name;", "<value as octal-escaped UTF-8>"} rows sorted by name bytes
#pragma once

#include <span>
#include <string_view>

namespace sdc::text {

struct HtmlEntity {
  std::string_view name;   // with the leading '&' and trailing ';', e.g. "&amp;"
  std::string_view value;  // UTF-8
};

// All entities, sorted by name (byte order) for binary search.
std::span<const HtmlEntity> html_entities();

}  // namespace sdc::text
