// File names that arrive from outside — a Content-Disposition header, the last segment of a URL,
// an upload's declared name — made safe to create inside a folder the server owns: no directory
// parts, no control characters, no leading dot, no characters shells or other systems choke on,
// bounded length, never empty. Also the header parsing that yields such names.
#pragma once

#include <optional>
#include <string>

namespace sdc::server::transfer {

// A name safe to join to a folder: the last path component only ('/' and '\' both separate),
// control characters and <>:"|?* replaced by '_', leading dots and spaces and trailing dots and
// spaces dropped, at most 200 bytes (the extension kept, UTF-8 never cut mid-character). An empty
// result becomes `fallback`.
std::string sanitize_file_name(const std::string& name, const std::string& fallback = "download");

// The file name a Content-Disposition header value carries (RFC 6266: `filename*=UTF-8''…`
// preferred over `filename="…"`), not yet sanitised; nothing when it carries none.
std::optional<std::string> content_disposition_file_name(const std::string& header_value);

// %XX decoding (invalid escapes kept as they are).
std::string percent_decode(const std::string& s);

// The last path segment of `url` (query and fragment removed), percent-decoded; empty if none.
std::string url_file_name(const std::string& url);

// `url` as it may appear in logs and messages: scheme://host[:port]/path, with user:password@
// removed and any query or fragment replaced by "?…" (tokens and signed-URL signatures live there).
std::string redact_url(const std::string& url);

}  // namespace sdc::server::transfer
