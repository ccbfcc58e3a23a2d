// sdc::Error — the one exception type for bad input. It carries the file, the key (tensor name,
// field, option), what was expected and what was found, so the CLI can print one precise line.
#pragma once

#include <stdexcept>
#include <string>

namespace sdc {

class Error : public std::runtime_error {
 public:
  // A structured error: "FILE: KEY: expected EXPECTED, found FOUND". Empty parts are left out.
  Error(std::string file, std::string key, std::string expected, std::string found);
  // A free-form message for cases that do not fit the pattern (still one line).
  explicit Error(const std::string& message);

  const std::string& file() const { return file_; }
  const std::string& key() const { return key_; }
  const std::string& expected() const { return expected_; }
  const std::string& found() const { return found_; }

  // A copy of this error whose file part is `file` (used when a lower layer did not know it).
  Error with_file(const std::string& file) const;

 private:
  std::string file_, key_, expected_, found_;
};

// Errors in the command line itself (unknown option values, ranges): exit code 2 as well.
class UsageError : public Error {
 public:
  using Error::Error;
};

}  // namespace sdc
