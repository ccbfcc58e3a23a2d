// A1111's infotext reader, over the PNG text chunks sdc's io layer reads.
#include "server/a1111/png_info.h"

#include <cctype>
#include <vector>

#include "common/error.h"
#include "io/image.h"
#include "server/a1111/api_error.h"

namespace sdc::server::a1111 {
namespace {

using nlohmann::json;

bool is_word(unsigned char c) {
  return std::isalnum(c) || c == '_' || c >= 0x80;
}
bool is_key_char(unsigned char c) {
  return is_word(c) || c == ' ' || c == '-' || c == '/';
}

struct Match {
  std::string key, value;
};

// Every match of \s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$) in `line`, scanned left to
// right as re.findall does (a position that does not match moves on by one character).
std::vector<Match> find_fields(const std::string& line) {
  std::vector<Match> out;
  size_t pos = 0;
  while (pos < line.size()) {
    size_t i = pos;
    while (i < line.size() && std::isspace((unsigned char)line[i])) ++i;
    // The key: a word character, then one or more key characters, greedy, then ':' — with
    // backtracking to the last ':' reachable inside the key characters.
    bool matched = false;
    if (i < line.size() && is_word((unsigned char)line[i])) {
      size_t end = i + 1;
      while (end < line.size() && is_key_char((unsigned char)line[end])) ++end;
      // The greedy key stops at the first non-key char; ':' is not a key char, so the key ends
      // where a ':' follows, needing at least 2 characters.
      if (end < line.size() && line[end] == ':' && end - i >= 2) {
        std::string key = line.substr(i, end - i);
        size_t v = end + 1;
        while (v < line.size() && std::isspace((unsigned char)line[v])) ++v;
        std::string value;
        size_t after = v;
        bool quoted = false;
        if (v < line.size() && line[v] == '"') {
          size_t q = v + 1;
          bool ok = false;
          size_t count = 0;
          while (q < line.size()) {
            if (line[q] == '\\' && q + 1 < line.size())
              q += 2, ++count;
            else if (line[q] == '"') {
              ok = count > 0;
              break;
            } else
              ++q, ++count;
          }
          if (ok && (q + 1 == line.size() || line[q + 1] == ',')) {
            value = line.substr(v, q + 1 - v);
            after = q + 1;
            quoted = true;
          }
        }
        if (!quoted) {
          size_t c = line.find(',', v);
          if (c == std::string::npos) c = line.size();
          value = line.substr(v, c - v);
          after = c;
        }
        out.push_back({key, value});
        pos = after < line.size() ? after + 1 : line.size();
        matched = true;
      }
    }
    if (!matched) ++pos;
  }
  return out;
}

std::string unquote(const std::string& v) {
  if (v.size() < 2 || v.front() != '"' || v.back() != '"') return v;
  try {
    return json::parse(v).get<std::string>();
  } catch (const json::exception&) {
    return v;
  }
}

bool split_size(const std::string& v, std::string& a, std::string& b) {
  // ^(\d+)x(\d+)$
  const size_t x = v.find('x');
  if (x == std::string::npos || x == 0 || x + 1 == v.size()) return false;
  for (size_t i = 0; i < v.size(); ++i)
    if (i != x && !std::isdigit((unsigned char)v[i])) return false;
  a = v.substr(0, x);
  b = v.substr(x + 1);
  return true;
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace((unsigned char)s[b])) ++b;
  while (e > b && std::isspace((unsigned char)s[e - 1])) --e;
  return s.substr(b, e - b);
}

}  // namespace

json parse_generation_parameters(const std::string& text) {
  json res = json::object();
  std::vector<std::string> lines;
  {
    size_t start = 0;
    const std::string t = trim(text);
    for (;;) {
      size_t nl = t.find('\n', start);
      lines.push_back(t.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
  }
  std::string last = lines.back();
  std::vector<Match> fields = find_fields(last);
  if (fields.size() < 3) {
    last.clear();
    fields.clear();
  } else {
    lines.pop_back();
  }
  std::string prompt, negative;
  bool in_negative = false;
  for (const std::string& raw : lines) {
    std::string line = trim(raw);
    if (line.rfind("Negative prompt:", 0) == 0) {
      in_negative = true;
      line = line.substr(16);
    }
    std::string& target = in_negative ? negative : prompt;
    target += (target.empty() ? "" : "\n") + trim(line);
  }
  res["Prompt"] = prompt;
  res["Negative prompt"] = negative;
  for (const Match& m : fields) {
    const std::string v = unquote(m.value);
    std::string a, b;
    if (split_size(v, a, b)) {
      res[m.key + "-1"] = a;
      res[m.key + "-2"] = b;
    } else {
      res[m.key] = v;
    }
  }
  const auto fill = [&res](const char* key, json value) {
    if (!res.contains(key)) res[key] = std::move(value);
  };
  fill("Clip skip", "1");
  fill("Hires resize-1", 0);
  fill("Hires resize-2", 0);
  fill("Hires sampler", "Use same sampler");
  fill("Hires schedule type", "Use same scheduler");
  fill("Hires checkpoint", "Use same checkpoint");
  fill("Hires prompt", "");
  fill("Hires negative prompt", "");
  fill("Mask mode", "Inpaint masked");
  fill("Masked content", "original");
  fill("Inpaint area", "Whole picture");
  fill("Masked area padding", 32);
  fill("RNG", "GPU");
  fill("Schedule type", "Automatic");
  fill("Schedule max sigma", 0);
  fill("Schedule min sigma", 0);
  fill("Schedule rho", 0);
  fill("VAE Encoder", "Full");
  fill("VAE Decoder", "Full");
  fill("FP8 weight", "Disable");
  fill("Cache FP16 weight for LoRA", false);
  fill("Refiner switch by sampling steps", false);
  return res;
}

json png_info_response(const std::vector<uint8_t>& bytes) {
  const io::ImageFormat format = io::sniff_image_format(bytes.data(), bytes.size());
  if (format == io::ImageFormat::Unknown)
    throw ApiError(500, "HTTPException", "Invalid encoded image", "image: expected a PNG or JPEG");
  json items = json::object();
  std::string info;
  if (format == io::ImageFormat::Png) {
    io::PngText text;
    try {
      text = io::decode_png_text(bytes.data(), bytes.size(), "image");
    } catch (const Error& e) {
      throw ApiError(500, "HTTPException", "Invalid encoded image", e.what());
    }
    bool have_parameters = false;
    for (const auto& [key, value] : text) {
      if (key == "parameters" && !have_parameters) {
        info = value;
        have_parameters = true;
      } else {
        items[key] = value;
      }
    }
  }
  return {{"info", info}, {"items", items}, {"parameters", parse_generation_parameters(info)}};
}

}  // namespace sdc::server::a1111
