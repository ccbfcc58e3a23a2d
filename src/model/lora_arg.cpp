// Splitting FILE[:SCALE] (see lora_arg.h for the rule).
#include "model/lora_arg.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include "common/error.h"

namespace sdc::model {
namespace {

std::optional<float> parse_number(const std::string& s) {
  if (s.empty() || std::isspace(static_cast<unsigned char>(s.front()))) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || errno == ERANGE || !std::isfinite(v)) return std::nullopt;
  if (std::fabs(v) > 3.0e38) return std::nullopt;
  return float(v);
}

bool is_file(const std::string& p) {
  std::error_code ec;
  return std::filesystem::is_regular_file(p, ec);
}

}  // namespace

LoraSpec parse_lora_arg(const std::string& arg) {
  if (arg.empty()) throw UsageError("", "--lora", "FILE or FILE:SCALE", "an empty argument");
  const size_t colon = arg.rfind(':');
  if (colon == std::string::npos) return {arg, 1.0f};
  const std::string head = arg.substr(0, colon), tail = arg.substr(colon + 1);
  if (std::optional<float> scale = parse_number(tail)) {
    if (head.empty())
      throw UsageError("", "--lora " + arg, "FILE:SCALE with a file name", "no file name");
    return {head, *scale};
  }
  if (tail.find_first_of("/\\") != std::string::npos || is_file(arg)) return {arg, 1.0f};
  throw UsageError("", "--lora " + arg, "FILE or FILE:SCALE with SCALE a number",
                   "scale '" + tail + "'" + (is_file(head) ? "" : " (and no file '" + arg + "')"));
}

}  // namespace sdc::model
