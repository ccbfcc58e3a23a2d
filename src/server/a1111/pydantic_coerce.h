// Reading JSON values the way pydantic v1 (FastAPI 0.94, which A1111 pins) validates its
// request models, so that what A1111 accepts sdc accepts, and what it refuses gives the same
// 422 error item:
//   int    JSON integers; floats truncated toward zero (int(7.9) = 7); true/false as 1/0;
//          strings Python's int() reads ("20", " -3 ", "1_000"); else "value is not a valid
//          integer" (type_error.integer)
//   float  numbers, booleans, strings Python's float() reads ("7", "1e-3", "nan"); else
//          "value is not a valid float" (type_error.float)
//   bool   true/false; 0/1; strings 0 off f false n no / 1 on t true y yes (any case); else
//          "value could not be parsed to a boolean" (type_error.bool)
//   str    strings; numbers and booleans as Python's str() writes them; else "str type
//          expected" (type_error.str)
//   list / dict   arrays / objects only (type_error.list / type_error.dict)
// Every field is optional and `null` means "not given". Integers beyond int64 saturate (the
// range checks that follow report them).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/a1111/api_error.h"

namespace sdc::server::a1111 {

// Each returns nullopt for null, or after recording an error at `loc` in `errors`.
std::optional<int64_t> coerce_int(const nlohmann::json& v, const nlohmann::json& loc,
                                  FieldErrors& errors);
std::optional<double> coerce_float(const nlohmann::json& v, const nlohmann::json& loc,
                                   FieldErrors& errors);
std::optional<bool> coerce_bool(const nlohmann::json& v, const nlohmann::json& loc,
                                FieldErrors& errors);
std::optional<std::string> coerce_str(const nlohmann::json& v, const nlohmann::json& loc,
                                      FieldErrors& errors);

// Python's str() of a JSON scalar: "True", "7", "7.0", "1e-05".
std::string python_str(const nlohmann::json& v);

// The fields of one JSON object body, read by name. Keys the model does not declare are never
// looked at (pydantic's extra=ignore).
class BodyReader {
 public:
  // `body` must be an object; `prefix` is the loc of the object itself (["body"]).
  BodyReader(const nlohmann::json& body, FieldErrors& errors,
             nlohmann::json prefix = nlohmann::json::array({"body"}));

  bool has(const std::string& key) const;                   // present and not null
  const nlohmann::json& raw(const std::string& key) const;  // null when absent
  nlohmann::json loc(const std::string& key) const;         // prefix + key
  FieldErrors& errors() { return errors_; }

  std::optional<int64_t> get_int(const std::string& key);
  std::optional<double> get_float(const std::string& key);
  std::optional<bool> get_bool(const std::string& key);
  std::optional<std::string> get_str(const std::string& key);
  std::optional<std::vector<std::string>> get_str_list(const std::string& key);
  std::optional<nlohmann::json> get_dict(const std::string& key);
  std::optional<nlohmann::json> get_list(const std::string& key);

  // Constraint checks in pydantic's words; each records an error and returns false.
  bool check_finite(const std::string& key, double value);            // not_finite
  bool check_ge(const std::string& key, double value, double limit);  // not_ge
  bool check_gt(const std::string& key, double value, double limit);  // not_gt
  bool check_le(const std::string& key, double value, double limit);  // not_le
  bool check_multiple_of(const std::string& key, int64_t value, int64_t m);
  bool check_max_length(const std::string& key, const std::string& value, size_t limit);

 private:
  const nlohmann::json& body_;
  FieldErrors& errors_;
  nlohmann::json prefix_;
};

}  // namespace sdc::server::a1111
