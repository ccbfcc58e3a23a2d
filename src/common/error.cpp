// Formatting of sdc::Error messages.
#include "common/error.h"

namespace sdc {
namespace {
std::string format(const std::string& file, const std::string& key, const std::string& expected,
                   const std::string& found) {
  std::string msg;
  auto append = [&msg](const std::string& part) {
    if (part.empty()) return;
    if (!msg.empty()) msg += ": ";
    msg += part;
  };
  append(file);
  append(key);
  std::string tail;
  if (!expected.empty()) tail = "expected " + expected;
  if (!found.empty()) tail += (tail.empty() ? "found " : ", found ") + found;
  append(tail);
  return msg;
}
}  // namespace

Error::Error(std::string file, std::string key, std::string expected, std::string found)
    : std::runtime_error(format(file, key, expected, found)),
      file_(std::move(file)),
      key_(std::move(key)),
      expected_(std::move(expected)),
      found_(std::move(found)) {}

Error::Error(const std::string& message) : std::runtime_error(message) {}

Error Error::with_file(const std::string& file) const {
  if (!file_.empty() || (key_.empty() && expected_.empty() && found_.empty()))
    return Error(file + ": " + what());
  return Error(file, key_, expected_, found_);
}

}  // namespace sdc
