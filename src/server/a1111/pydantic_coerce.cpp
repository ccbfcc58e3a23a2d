// pydantic v1's coercions of JSON values (int_validator, float_validator, bool_validator,
// str_validator, list/dict validators) and its constraint messages.
#include "server/a1111/pydantic_coerce.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>

namespace sdc::server::a1111 {
namespace {

using nlohmann::json;

constexpr double kInt64Max = 9223372036854775807.0;

int64_t saturate(double v) {
  if (v >= kInt64Max) return std::numeric_limits<int64_t>::max();
  if (v <= -kInt64Max) return std::numeric_limits<int64_t>::min();
  return int64_t(v);  // truncation toward zero, as Python's int(float)
}

std::string strip(const std::string& s) {
  const auto is_space = [](unsigned char c) { return std::isspace(c) != 0; };
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

// Python numeric literals allow one '_' between digits ("1_000"); anything else is invalid.
std::optional<std::string> drop_underscores(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '_') {
      out += s[i];
      continue;
    }
    if (i == 0 || i + 1 == s.size() || !std::isdigit((unsigned char)s[i - 1]) ||
        !std::isdigit((unsigned char)s[i + 1]))
      return std::nullopt;
  }
  return out;
}

// Python's int(str): optional sign, decimal digits, surrounding whitespace.
std::optional<int64_t> parse_python_int(const std::string& text) {
  auto s = drop_underscores(strip(text));
  if (!s || s->empty()) return std::nullopt;
  size_t i = 0;
  const bool negative = (*s)[0] == '-';
  if ((*s)[0] == '+' || (*s)[0] == '-') ++i;
  if (i == s->size()) return std::nullopt;
  for (size_t j = i; j < s->size(); ++j)
    if (!std::isdigit((unsigned char)(*s)[j])) return std::nullopt;
  int64_t magnitude = 0;
  auto [end, ec] = std::from_chars(s->data() + i, s->data() + s->size(), magnitude);
  (void)end;
  if (ec == std::errc::result_out_of_range)  // the range checks that follow report it
    return negative ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max();
  return negative ? -magnitude : magnitude;
}

// Python's float(str): decimal or exponent notation, "inf", "infinity", "nan", with a sign.
std::optional<double> parse_python_float(const std::string& text) {
  auto s = drop_underscores(strip(text));
  if (!s || s->empty()) return std::nullopt;
  std::string lower = *s;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  size_t i = (lower[0] == '+' || lower[0] == '-') ? 1 : 0;
  const double sign = lower[0] == '-' ? -1.0 : 1.0;
  const std::string body = lower.substr(i);
  if (body == "inf" || body == "infinity") return sign * std::numeric_limits<double>::infinity();
  if (body == "nan") return std::numeric_limits<double>::quiet_NaN();
  // Digits with at most one '.', at least one digit, then an optional exponent.
  size_t p = 0, digits = 0;
  while (p < body.size() && std::isdigit((unsigned char)body[p])) ++p, ++digits;
  if (p < body.size() && body[p] == '.') {
    ++p;
    while (p < body.size() && std::isdigit((unsigned char)body[p])) ++p, ++digits;
  }
  if (digits == 0) return std::nullopt;
  if (p < body.size() && body[p] == 'e') {
    ++p;
    if (p < body.size() && (body[p] == '+' || body[p] == '-')) ++p;
    size_t exp_digits = 0;
    while (p < body.size() && std::isdigit((unsigned char)body[p])) ++p, ++exp_digits;
    if (exp_digits == 0) return std::nullopt;
  }
  if (p != body.size()) return std::nullopt;
  double v = 0;
  auto [end, ec] = std::from_chars(body.data(), body.data() + body.size(), v);
  if (ec == std::errc::result_out_of_range) {
    // Python gives inf for overflow and 0 for underflow.
    const bool tiny = body.find("e-") != std::string::npos;
    v = tiny ? 0.0 : std::numeric_limits<double>::infinity();
  } else if (ec != std::errc() || end != body.data() + body.size()) {
    return std::nullopt;
  }
  return sign * v;
}

std::string python_float_repr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  // Shortest round-trip digits, then Python's layout: fixed for exponents -4..15, else
  // scientific with a signed two-digit exponent.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  const size_t e = sci.find('e');
  std::string mant = sci.substr(0, e);
  const int exp10 = std::stoi(sci.substr(e + 1));
  const bool negative = mant[0] == '-';
  if (negative) mant.erase(0, 1);
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  std::string out;
  if (exp10 >= -5 + 1 && exp10 < 16) {
    if (exp10 < 0) {
      out = "0." + std::string(size_t(-exp10 - 1), '0') + digits;
    } else if (size_t(exp10) + 1 >= digits.size()) {
      out = digits + std::string(size_t(exp10) + 1 - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, size_t(exp10) + 1) + "." + digits.substr(size_t(exp10) + 1);
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    const int a = std::abs(exp10);
    out += std::string("e") + (exp10 < 0 ? "-" : "+") + (a < 10 ? "0" : "") + std::to_string(a);
  }
  return negative ? "-" + out : out;
}

json append(json loc, const std::string& key) {
  loc.push_back(key);
  return loc;
}

std::string number_text(double v) {
  return python_float_repr(v).ends_with(".0") ? std::to_string(int64_t(v)) : python_float_repr(v);
}

json limit_value(double v) {
  if (std::floor(v) == v && std::fabs(v) < 1e15) return int64_t(v);
  return v;
}

}  // namespace

std::string python_str(const json& v) {
  if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
  if (v.is_number_integer()) return v.dump();
  if (v.is_number_float()) return python_float_repr(v.get<double>());
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

std::optional<int64_t> coerce_int(const json& v, const json& loc, FieldErrors& errors) {
  if (v.is_null()) return std::nullopt;
  if (v.is_boolean()) return v.get<bool>() ? 1 : 0;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    return u > uint64_t(std::numeric_limits<int64_t>::max()) ? std::numeric_limits<int64_t>::max()
                                                             : int64_t(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float() && std::isfinite(v.get<double>())) return saturate(v.get<double>());
  if (v.is_string())
    if (auto i = parse_python_int(v.get<std::string>())) return i;
  errors.add(loc, "value is not a valid integer", "type_error.integer");
  return std::nullopt;
}

std::optional<double> coerce_float(const json& v, const json& loc, FieldErrors& errors) {
  if (v.is_null()) return std::nullopt;
  if (v.is_boolean()) return v.get<bool>() ? 1.0 : 0.0;
  if (v.is_number()) return v.get<double>();
  if (v.is_string())
    if (auto f = parse_python_float(v.get<std::string>())) return f;
  errors.add(loc, "value is not a valid float", "type_error.float");
  return std::nullopt;
}

std::optional<bool> coerce_bool(const json& v, const json& loc, FieldErrors& errors) {
  if (v.is_null()) return std::nullopt;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number()) {
    const double d = v.get<double>();
    if (d == 0.0) return false;
    if (d == 1.0) return true;
  }
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return char(std::tolower(c)); });
    for (const char* f : {"0", "off", "f", "false", "n", "no"})
      if (s == f) return false;
    for (const char* t : {"1", "on", "t", "true", "y", "yes"})
      if (s == t) return true;
  }
  errors.add(loc, "value could not be parsed to a boolean", "type_error.bool");
  return std::nullopt;
}

std::optional<std::string> coerce_str(const json& v, const json& loc, FieldErrors& errors) {
  if (v.is_null()) return std::nullopt;
  if (v.is_string() || v.is_number() || v.is_boolean()) return python_str(v);
  errors.add(loc, "str type expected", "type_error.str");
  return std::nullopt;
}

BodyReader::BodyReader(const json& body, FieldErrors& errors, json prefix)
    : body_(body), errors_(errors), prefix_(std::move(prefix)) {}

bool BodyReader::has(const std::string& key) const {
  auto it = body_.find(key);
  return it != body_.end() && !it->is_null();
}

const json& BodyReader::raw(const std::string& key) const {
  static const json null_value;
  auto it = body_.find(key);
  return it == body_.end() ? null_value : *it;
}

json BodyReader::loc(const std::string& key) const {
  return append(prefix_, key);
}

std::optional<int64_t> BodyReader::get_int(const std::string& key) {
  return coerce_int(raw(key), loc(key), errors_);
}
std::optional<double> BodyReader::get_float(const std::string& key) {
  return coerce_float(raw(key), loc(key), errors_);
}
std::optional<bool> BodyReader::get_bool(const std::string& key) {
  return coerce_bool(raw(key), loc(key), errors_);
}
std::optional<std::string> BodyReader::get_str(const std::string& key) {
  return coerce_str(raw(key), loc(key), errors_);
}

std::optional<std::vector<std::string>> BodyReader::get_str_list(const std::string& key) {
  auto list = get_list(key);
  if (!list) return std::nullopt;
  std::vector<std::string> out;
  bool ok = true;
  for (size_t i = 0; i < list->size(); ++i) {
    json item_loc = loc(key);
    item_loc.push_back(i);
    const json& item = (*list)[i];
    // Inside a list, None is not a str (List[str] items are not optional).
    if (item.is_null()) {
      errors_.add(item_loc, "none is not an allowed value", "type_error.none.not_allowed");
      ok = false;
      continue;
    }
    auto s = coerce_str(item, item_loc, errors_);
    if (!s)
      ok = false;
    else
      out.push_back(*s);
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<json> BodyReader::get_dict(const std::string& key) {
  const json& v = raw(key);
  if (v.is_null()) return std::nullopt;
  if (v.is_object()) return v;
  errors_.add(loc(key), "value is not a valid dict", "type_error.dict");
  return std::nullopt;
}

std::optional<json> BodyReader::get_list(const std::string& key) {
  const json& v = raw(key);
  if (v.is_null()) return std::nullopt;
  if (v.is_array()) return v;
  errors_.add(loc(key), "value is not a valid list", "type_error.list");
  return std::nullopt;
}

bool BodyReader::check_finite(const std::string& key, double value) {
  if (std::isfinite(value)) return true;
  errors_.add(loc(key), "value is not a finite number", "value_error.number.not_finite");
  return false;
}

bool BodyReader::check_ge(const std::string& key, double value, double limit) {
  if (value >= limit) return true;
  errors_.add(loc(key), "ensure this value is greater than or equal to " + number_text(limit),
              "value_error.number.not_ge", {{"limit_value", limit_value(limit)}});
  return false;
}

bool BodyReader::check_gt(const std::string& key, double value, double limit) {
  if (value > limit) return true;
  errors_.add(loc(key), "ensure this value is greater than " + number_text(limit),
              "value_error.number.not_gt", {{"limit_value", limit_value(limit)}});
  return false;
}

bool BodyReader::check_le(const std::string& key, double value, double limit) {
  if (value <= limit) return true;
  errors_.add(loc(key), "ensure this value is less than or equal to " + number_text(limit),
              "value_error.number.not_le", {{"limit_value", limit_value(limit)}});
  return false;
}

bool BodyReader::check_multiple_of(const std::string& key, int64_t value, int64_t m) {
  if (value % m == 0) return true;
  errors_.add(loc(key), "ensure this value is a multiple of " + std::to_string(m),
              "value_error.number.not_multiple", {{"multiple_of", m}});
  return false;
}

bool BodyReader::check_max_length(const std::string& key, const std::string& value, size_t limit) {
  if (value.size() <= limit) return true;
  errors_.add(loc(key), "ensure this value has at most " + std::to_string(limit) + " characters",
              "value_error.any_str.max_length", {{"limit_value", limit}});
  return false;
}

}  // namespace sdc::server::a1111
