// Sanitising and extracting file names (see file_names.h).
#include "server/transfer/file_names.h"

#include <cctype>
#include <cstring>

namespace sdc::server::transfer {

namespace {

std::string trim(std::string s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return {};
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

// Cuts `s` to at most `n` bytes without splitting a UTF-8 sequence.
std::string utf8_prefix(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  size_t cut = n;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string percent_decode(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(char(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

std::string sanitize_file_name(const std::string& name, const std::string& fallback) {
  std::string base = name;
  size_t sep = base.find_last_of("/\\");
  if (sep != std::string::npos) base = base.substr(sep + 1);
  std::string clean;
  for (char ch : base) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f || std::strchr("<>:\"|?*", ch) != nullptr)
      clean.push_back('_');
    else
      clean.push_back(ch);
  }
  size_t b = clean.find_first_not_of(". ");
  clean = b == std::string::npos ? std::string() : clean.substr(b);
  while (!clean.empty() && (clean.back() == '.' || clean.back() == ' ')) clean.pop_back();
  constexpr size_t kMaxBytes = 200;
  if (clean.size() > kMaxBytes) {
    size_t dot = clean.find_last_of('.');
    std::string ext =
        (dot != std::string::npos && clean.size() - dot <= 16) ? clean.substr(dot) : "";
    clean = utf8_prefix(clean.substr(0, clean.size() - ext.size()), kMaxBytes - ext.size()) + ext;
  }
  return clean.empty() ? fallback : clean;
}

std::optional<std::string> content_disposition_file_name(const std::string& value) {
  std::optional<std::string> plain, extended;
  size_t i = 0;
  while (i < value.size()) {
    size_t semi = value.find(';', i);
    // A quoted string may contain ';': find the parameter's end outside quotes.
    size_t eq = value.find('=', i);
    if (eq == std::string::npos || (semi != std::string::npos && semi < eq)) {
      if (semi == std::string::npos) break;
      i = semi + 1;
      continue;
    }
    std::string key = trim(value.substr(i, eq - i));
    for (char& c : key) c = char(std::tolower(static_cast<unsigned char>(c)));
    size_t j = eq + 1;
    while (j < value.size() && value[j] == ' ') ++j;
    std::string val;
    if (j < value.size() && value[j] == '"') {
      ++j;
      while (j < value.size() && value[j] != '"') {
        if (value[j] == '\\' && j + 1 < value.size()) ++j;
        val.push_back(value[j++]);
      }
      size_t next = value.find(';', j);
      i = next == std::string::npos ? value.size() : next + 1;
    } else {
      size_t end = value.find(';', j);
      val = trim(value.substr(j, end == std::string::npos ? std::string::npos : end - j));
      i = end == std::string::npos ? value.size() : end + 1;
    }
    if (key == "filename*") {
      // charset'language'percent-encoded; only UTF-8 and ISO-8859-1 are defined, both accepted
      // as bytes (a Latin-1 name is rare and becomes '_'-free mojibake at worst).
      size_t q1 = val.find('\'');
      size_t q2 = q1 == std::string::npos ? std::string::npos : val.find('\'', q1 + 1);
      if (q2 != std::string::npos) extended = percent_decode(val.substr(q2 + 1));
    } else if (key == "filename") {
      plain = val;
    }
  }
  if (extended && !extended->empty()) return extended;
  if (plain && !plain->empty()) return plain;
  return std::nullopt;
}

std::string url_file_name(const std::string& url) {
  std::string path = url;
  size_t scheme = path.find("://");
  if (scheme != std::string::npos) {
    size_t slash = path.find('/', scheme + 3);
    path = slash == std::string::npos ? std::string() : path.substr(slash);
  }
  size_t cut = path.find_first_of("?#");
  if (cut != std::string::npos) path = path.substr(0, cut);
  size_t last = path.find_last_of('/');
  return percent_decode(last == std::string::npos ? path : path.substr(last + 1));
}

std::string redact_url(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) {
    size_t cut = url.find_first_of("?#");
    return cut == std::string::npos ? url : url.substr(0, cut) + "?…";
  }
  size_t auth_start = scheme + 3;
  size_t path_start = url.find_first_of("/?#", auth_start);
  std::string authority = url.substr(
      auth_start, path_start == std::string::npos ? std::string::npos : path_start - auth_start);
  size_t at = authority.rfind('@');
  if (at != std::string::npos) authority = authority.substr(at + 1);
  std::string rest = path_start == std::string::npos ? std::string() : url.substr(path_start);
  size_t cut = rest.find_first_of("?#");
  if (cut != std::string::npos) rest = rest.substr(0, cut) + "?…";
  return url.substr(0, auth_start) + authority + rest;
}

}  // namespace sdc::server::transfer
