// A1111 "parameters" text: writing in create_infotext's layout and reading as
// parse_generation_parameters does (its field regex re-implemented by hand: linear time, no
// std::regex recursion on long quoted values).
#include "pipeline/generation_params.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "common/error.h"

namespace sdc::pipeline {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
// Python's \w, approximated for UTF-8: ASCII letters, digits, '_' and any non-ASCII byte.
bool is_word(char c) {
  const auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) || c == '_' || u >= 0x80;
}
bool is_key_char(char c) {
  return is_word(c) || c == ' ' || c == '-' || c == '/';
}

std::string strip(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && is_space(s[a])) ++a;
  while (b > a && is_space(s[b - 1])) --b;
  return s.substr(a, b - a);
}

bool starts_with(const std::string& s, const char* prefix) {
  return s.compare(0, std::strlen(prefix), prefix) == 0;
}

// Python's repr of a float, except that whole numbers print without ".0" (A1111's sliders hand
// integers through as such: "CFG scale: 7", "CFG scale: 7.5").
std::string number(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15)
    return std::to_string(static_cast<long long>(v));
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xc0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += char(0xe0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3f));
    out += char(0x80 | (cp & 0x3f));
  } else {
    out += char(0xf0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3f));
    out += char(0x80 | ((cp >> 6) & 0x3f));
    out += char(0x80 | (cp & 0x3f));
  }
}

// json.loads of a whole string literal; false where Python's json would raise.
bool json_string_decode(const std::string& s, std::string& out) {
  if (s.size() < 2 || s.front() != '"') return false;
  out.clear();
  size_t i = 1;
  auto hex4 = [&](size_t at, uint32_t& v) {
    if (at + 4 > s.size()) return false;
    v = 0;
    for (size_t k = at; k < at + 4; ++k) {
      const char c = s[k];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= uint32_t(c - 'A' + 10);
      else
        return false;
    }
    return true;
  };
  while (i < s.size()) {
    const char c = s[i];
    if (c == '"') return i + 1 == s.size();                  // the literal must be the whole text
    if (static_cast<unsigned char>(c) < 0x20) return false;  // strict: raw control character
    if (c != '\\') {
      out += c;
      ++i;
      continue;
    }
    if (i + 1 >= s.size()) return false;
    const char e = s[i + 1];
    i += 2;
    switch (e) {
      case '"':
        out += '"';
        break;
      case '\\':
        out += '\\';
        break;
      case '/':
        out += '/';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u': {
        uint32_t cp = 0;
        if (!hex4(i, cp)) return false;
        i += 4;
        if (cp >= 0xd800 && cp <= 0xdbff && i + 6 <= s.size() && s[i] == '\\' && s[i + 1] == 'u') {
          uint32_t lo = 0;
          if (hex4(i + 2, lo) && lo >= 0xdc00 && lo <= 0xdfff) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            i += 6;
          }
        }
        if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;  // a lone surrogate has no UTF-8 form
        append_utf8(out, cp);
        break;
      }
      default:
        return false;
    }
  }
  return false;  // no closing quote
}

// A1111's re_param = r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)' with findall.
Fields find_params(const std::string& line) {
  Fields out;
  const size_t n = line.size();
  size_t pos = 0;
  while (pos < n) {
    size_t p = pos;
    while (p < n && is_space(line[p])) ++p;
    if (p >= n || !is_word(line[p])) {
      pos = p + 1;
      continue;
    }
    size_t e = p + 1;
    while (e < n && is_key_char(line[e])) ++e;
    // Every start inside this run ends at the same e: skip it whole when it is not a key.
    if (e >= n || line[e] != ':' || e - p < 2) {
      pos = e;
      continue;
    }
    std::string key = line.substr(p, e - p);
    size_t v = e + 1;
    while (v < n && is_space(line[v])) ++v;
    size_t end = std::string::npos;  // end of the value
    if (v < n && line[v] == '"') {   // first alternative: a quoted string
      size_t i = v + 1, count = 0;
      while (i < n && line[i] != '"') {
        if (line[i] == '\\') {
          if (i + 1 >= n) break;
          i += 2;
        } else {
          ++i;
        }
        ++count;
      }
      if (i < n && line[i] == '"' && count > 0 && (i + 1 == n || line[i + 1] == ',')) end = i + 1;
    }
    if (end == std::string::npos) {  // second alternative: up to the next comma
      end = line.find(',', v);
      if (end == std::string::npos) end = n;
    }
    out.emplace_back(std::move(key), line.substr(v, end - v));
    pos = end < n ? end + 1 : n;
  }
  return out;
}

[[noreturn]] void bad_value(const std::string& key, const char* expected, const std::string& v) {
  throw Error("parameters", key, expected, "\"" + v + "\"");
}

int64_t parse_int(const std::string& key, const std::string& v) {
  int64_t out = 0;
  const auto r = std::from_chars(v.data(), v.data() + v.size(), out);
  if (r.ec != std::errc() || r.ptr != v.data() + v.size()) bad_value(key, "an integer", v);
  return out;
}

double parse_double(const std::string& key, const std::string& v) {
  double out = 0;
  const auto r = std::from_chars(v.data(), v.data() + v.size(), out);
  if (r.ec != std::errc() || r.ptr != v.data() + v.size() || !std::isfinite(out))
    bad_value(key, "a number", v);
  return out;
}

bool parse_bool(const std::string& key, const std::string& v) {
  if (v == "True") return true;
  if (v == "False") return false;
  bad_value(key, "True or False", v);
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "(a, b, …)" → its parts.
std::vector<std::string> tuple_parts(const std::string& key, const std::string& v) {
  if (v.size() < 2 || v.front() != '(' || v.back() != ')') bad_value(key, "a tuple (a, b, …)", v);
  std::vector<std::string> parts;
  size_t start = 1;
  for (size_t i = 1; i < v.size(); ++i)
    if (v[i] == ',' || i + 1 == v.size()) {
      parts.push_back(strip(v.substr(start, i - start)));
      start = i + 1;
    }
  return parts;
}

// ---- ControlNet units ------------------------------------------------------------------------

std::string format_unit(const ControlNetInfo& u) {
  Fields f = {{"Module", u.module},
              {"Model", u.model},
              {"Weight", number(u.weight)},
              {"Resize Mode", u.resize_mode}};
  if (u.processor_res > 0) f.emplace_back("Processor Res", std::to_string(u.processor_res));
  if (u.threshold_a) f.emplace_back("Threshold A", number(*u.threshold_a));
  if (u.threshold_b) f.emplace_back("Threshold B", number(*u.threshold_b));
  f.emplace_back("Guidance Start", number(u.guidance_start));
  f.emplace_back("Guidance End", number(u.guidance_end));
  f.emplace_back("Pixel Perfect", u.pixel_perfect ? "True" : "False");
  f.emplace_back("Control Mode", u.control_mode);
  f.insert(f.end(), u.extra.begin(), u.extra.end());
  std::string s;
  for (const auto& [k, v] : f) s += (s.empty() ? "" : ", ") + k + ": " + v;
  return s;
}

// Both sd-webui-controlnet layouts: the older "Module: canny, Weight: 1, Guidance Start: 0, …"
// and the newer "preprocessor: canny, weight: 1, starting/ending: (0, 1), preprocessor params:
// (512, 100, 200), …". Commas inside parentheses do not split fields.
ControlNetInfo parse_unit(const std::string& key, const std::string& text) {
  ControlNetInfo u;
  std::vector<std::string> pieces;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size() && text[i] == '(') ++depth;
    if (i < text.size() && text[i] == ')' && depth > 0) --depth;
    if (i == text.size() || (text[i] == ',' && depth == 0)) {
      const std::string piece = strip(text.substr(start, i - start));
      if (!piece.empty()) pieces.push_back(piece);
      start = i + 1;
    }
  }
  for (const std::string& piece : pieces) {
    const size_t colon = piece.find(':');
    if (colon == std::string::npos) bad_value(key, "\"name: value\" fields", piece);
    const std::string name = strip(piece.substr(0, colon)), v = strip(piece.substr(colon + 1));
    const std::string k = lower(name), field = key + " " + name;
    if (k == "module" || k == "preprocessor")
      u.module = v;
    else if (k == "model")
      u.model = v;
    else if (k == "weight")
      u.weight = parse_double(field, v);
    else if (k == "resize mode")
      u.resize_mode = v;
    else if (k == "processor res")
      u.processor_res = int(parse_int(field, v));
    else if (k == "threshold a")
      u.threshold_a = parse_double(field, v);
    else if (k == "threshold b")
      u.threshold_b = parse_double(field, v);
    else if (k == "guidance start")
      u.guidance_start = parse_double(field, v);
    else if (k == "guidance end")
      u.guidance_end = parse_double(field, v);
    else if (k == "pixel perfect")
      u.pixel_perfect = parse_bool(field, v);
    else if (k == "control mode")
      u.control_mode = v;
    else if (k == "starting/ending") {
      const auto p = tuple_parts(field, v);
      if (p.size() != 2) bad_value(field, "(start, end)", v);
      u.guidance_start = parse_double(field, p[0]);
      u.guidance_end = parse_double(field, p[1]);
    } else if (k == "preprocessor params") {
      const auto p = tuple_parts(field, v);
      if (p.size() != 3) bad_value(field, "(resolution, threshold a, threshold b)", v);
      const double res = parse_double(field, p[0]), a = parse_double(field, p[1]),
                   b = parse_double(field, p[2]);
      u.processor_res = res > 0 ? int(res) : 0;
      if (a != -1) u.threshold_a = a;  // -1: the preprocessor has no such parameter
      if (b != -1) u.threshold_b = b;
    } else {
      u.extra.emplace_back(name, v);
    }
  }
  return u;
}

}  // namespace

std::string format_a1111_number(double v) {
  return number(v);
}

std::string quote_a1111_value(const std::string& value) {
  if (value.find_first_of(",\n:") == std::string::npos) return value;
  std::string out = "\"";
  for (char c : value) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string unquote_a1111_value(const std::string& value) {
  if (value.empty() || value.front() != '"' || value.back() != '"') return value;
  std::string out;
  return json_string_decode(value, out) ? out : value;
}

std::string format_a1111_parameters(const GenerationParams& p) {
  Fields f = {{"Steps", std::to_string(p.steps)}, {"Sampler", p.sampler}};
  if (!p.schedule_type.empty()) f.emplace_back("Schedule type", p.schedule_type);
  f.emplace_back("CFG scale", number(p.cfg_scale));
  f.emplace_back("Seed", std::to_string(p.seed));
  f.emplace_back("Size", std::to_string(p.width) + "x" + std::to_string(p.height));
  if (!p.model_hash.empty()) f.emplace_back("Model hash", p.model_hash);
  if (!p.model.empty()) f.emplace_back("Model", p.model);
  if (p.variation_seed) f.emplace_back("Variation seed", std::to_string(*p.variation_seed));
  if (p.variation_strength)
    f.emplace_back("Variation seed strength", number(*p.variation_strength));
  if (p.seed_resize_from)
    f.emplace_back("Seed resize from", std::to_string(p.seed_resize_from->first) + "x" +
                                           std::to_string(p.seed_resize_from->second));
  if (p.denoising_strength) f.emplace_back("Denoising strength", number(*p.denoising_strength));
  if (p.conditional_mask_weight)
    f.emplace_back("Conditional mask weight", number(*p.conditional_mask_weight));
  if (p.clip_skip > 1) f.emplace_back("Clip skip", std::to_string(p.clip_skip));
  if (p.ensd != 0) f.emplace_back("ENSD", std::to_string(p.ensd));
  if (!p.rng.empty()) f.emplace_back("RNG", p.rng);
  f.insert(f.end(), p.extra.begin(), p.extra.end());
  if (!p.loras.empty()) {
    std::string s;
    for (const auto& l : p.loras) s += (s.empty() ? "" : ", ") + l.name + ": " + l.hash;
    f.emplace_back("Lora hashes", s);
  }
  for (size_t i = 0; i < p.controlnets.size(); ++i)
    f.emplace_back("ControlNet " + std::to_string(i), format_unit(p.controlnets[i]));
  if (!p.version.empty()) f.emplace_back("Version", p.version);

  std::string fields;
  for (const auto& [k, v] : f)
    fields += (fields.empty() ? "" : ", ") + k + ": " + quote_a1111_value(v);
  std::string text = p.prompt;
  if (!p.negative_prompt.empty()) text += "\nNegative prompt: " + p.negative_prompt;
  return strip(text + "\n" + fields);
}

GenerationParams parse_a1111_parameters(const std::string& text) {
  std::vector<std::string> lines;
  const std::string body = strip(text);
  for (size_t start = 0;;) {
    const size_t nl = body.find('\n', start);
    lines.push_back(body.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  std::string last = lines.back();
  lines.pop_back();
  Fields fields = find_params(last);
  if (fields.size() < 3) {
    lines.push_back(last);
    fields.clear();
  }

  GenerationParams p;  // fields the text does not name keep their defaults
  bool in_negative = false;
  for (std::string line : lines) {
    line = strip(line);
    if (starts_with(line, "Negative prompt:")) {
      in_negative = true;
      line = strip(line.substr(16));
    }
    std::string& target = in_negative ? p.negative_prompt : p.prompt;
    target += (target.empty() ? "" : "\n") + line;
  }

  for (auto& [key, raw] : fields) {
    if (raw.empty()) continue;  // A1111 skips these too (its v[0] raises)
    std::string v = raw.front() == '"' && raw.back() == '"' ? unquote_a1111_value(raw) : raw;
    if (key == "Steps") {
      p.steps = int(parse_int(key, v));
    } else if (key == "Sampler") {
      p.sampler = v;
    } else if (key == "Schedule type") {
      p.schedule_type = v;
    } else if (key == "CFG scale") {
      p.cfg_scale = parse_double(key, v);
    } else if (key == "Seed") {
      p.seed = parse_int(key, v);
    } else if (key == "Size") {
      const size_t x = v.find('x');
      if (x == std::string::npos) bad_value(key, "WIDTHxHEIGHT", v);
      p.width = int(parse_int(key, v.substr(0, x)));
      p.height = int(parse_int(key, v.substr(x + 1)));
    } else if (key == "Model hash") {
      p.model_hash = v;
    } else if (key == "Model") {
      p.model = v;
    } else if (key == "Variation seed") {
      p.variation_seed = parse_int(key, v);
    } else if (key == "Variation seed strength") {
      p.variation_strength = parse_double(key, v);
    } else if (key == "Seed resize from") {
      const size_t x = v.find('x');
      if (x == std::string::npos) bad_value(key, "WIDTHxHEIGHT", v);
      p.seed_resize_from =
          std::pair{int(parse_int(key, v.substr(0, x))), int(parse_int(key, v.substr(x + 1)))};
    } else if (key == "Denoising strength") {
      p.denoising_strength = parse_double(key, v);
    } else if (key == "Conditional mask weight") {
      p.conditional_mask_weight = parse_double(key, v);
    } else if (key == "Clip skip") {
      p.clip_skip = int(parse_int(key, v));
    } else if (key == "ENSD") {
      p.ensd = parse_int(key, v);
    } else if (key == "RNG") {
      p.rng = v;
    } else if (key == "Version") {
      p.version = v;
    } else if (key == "Lora hashes") {
      for (size_t start = 0; start <= v.size();) {
        size_t comma = v.find(',', start);
        if (comma == std::string::npos) comma = v.size();
        const std::string item = strip(v.substr(start, comma - start));
        const size_t colon = item.find(':');
        if (colon == std::string::npos) bad_value(key, "\"name: hash, …\"", v);
        p.loras.push_back({strip(item.substr(0, colon)), strip(item.substr(colon + 1))});
        start = comma + 1;
      }
    } else if (starts_with(key, "ControlNet ") && key.size() > 11 &&
               key.find_first_not_of("0123456789", 11) == std::string::npos) {
      p.controlnets.push_back(parse_unit(key, v));
    } else {
      p.extra.emplace_back(key, v);
    }
  }
  return p;
}

}  // namespace sdc::pipeline
