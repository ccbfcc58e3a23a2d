// Parsing of the serve command's list options.
#include "server/server_options.h"

#include "common/error.h"

namespace sdc::server {
namespace {
std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t");
  if (a == std::string::npos) return "";
  const size_t b = s.find_last_not_of(" \t");
  return s.substr(a, b - a + 1);
}
}  // namespace

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string part = trim(text.substr(start, end - start));
    if (!part.empty()) out.push_back(part);
    start = end + 1;
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> parse_api_auth(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& pair : split_list(text)) {
    const size_t colon = pair.find(':');
    if (colon == std::string::npos)
      throw UsageError("", "--api-auth", "user:password pairs separated by ','",
                       "'" + pair + "' without ':'");
    if (colon == 0) throw UsageError("", "--api-auth", "a user name before ':'", "an empty one");
    out.emplace_back(pair.substr(0, colon), pair.substr(colon + 1));
  }
  if (out.empty() && !text.empty())
    throw UsageError("", "--api-auth", "user:password pairs", "'" + text + "'");
  return out;
}

bool is_loopback_host(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

}  // namespace sdc::server
