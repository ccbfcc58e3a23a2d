// <type:args> tags, scanned by hand with the same grammar as A1111's regular expression.
#include "server/a1111/extra_networks.h"

#include <cctype>
#include <cmath>
#include <optional>

#include "common/error.h"
#include "server/a1111/pydantic_coerce.h"

namespace sdc::server::a1111 {
namespace {

// Python's \w on str: letters, digits and '_' of any script. Bytes of a multi-byte UTF-8
// sequence are taken as word characters (most non-ASCII code points in a tag name are letters).
bool is_word(unsigned char c) {
  return std::isalnum(c) || c == '_' || c >= 0x80;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) return out;
    start = p + 1;
  }
}

double multiplier(const std::string& text, const std::string& tag) {
  FieldErrors ignored;
  auto v = coerce_float(nlohmann::json(text), nlohmann::json::array(), ignored);
  if (!v || !std::isfinite(*v))
    throw Error("", "prompt", "a number as the multiplier in " + tag, text);
  return *v;
}

LoraTag parse_lora(const std::string& args, const std::string& tag) {
  std::vector<std::string> positional;
  std::optional<std::string> te, unet, dyn;
  for (const std::string& item : split(args, ':')) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos) {
      positional.push_back(item);
      continue;
    }
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    if (key == "te")
      te = value;
    else if (key == "unet")
      unet = value;
    else if (key == "dyn")
      dyn = value;
    else
      throw Error("", "prompt", "te=, unet= or dyn= in " + tag, key + "=");
  }
  LoraTag lora;
  lora.name = positional.empty() ? "" : positional[0];
  if (lora.name.empty() || lora.name.find('/') != std::string::npos ||
      lora.name.find('\\') != std::string::npos || lora.name.find("..") != std::string::npos)
    throw Error("", "prompt", "a LoRA name without a path in " + tag, "'" + lora.name + "'");
  double te_mult = positional.size() > 1 ? multiplier(positional[1], tag) : 1.0;
  if (te) te_mult = multiplier(*te, tag);
  double unet_mult = positional.size() > 2 ? multiplier(positional[2], tag) : te_mult;
  if (unet) unet_mult = multiplier(*unet, tag);
  if (positional.size() > 3 || dyn)
    throw Error("", "prompt", "no dynamic rank in " + tag + " (sdc merges the full LoRA)",
                positional.size() > 3 ? positional[3] : *dyn);
  if (te_mult != unet_mult)
    throw Error(
        "", "prompt",
        "one multiplier for text encoder and UNet in " + tag + " (sdc merges a LoRA at one scale)",
        "te " + python_str(te_mult) + ", unet " + python_str(unet_mult));
  lora.weight = te_mult;
  return lora;
}

}  // namespace

PromptNetworks extract_extra_networks(std::string_view prompt) {
  PromptNetworks out;
  size_t i = 0;
  while (i < prompt.size()) {
    if (prompt[i] != '<') {
      out.prompt += prompt[i++];
      continue;
    }
    // <(\w+):([^>]+)>
    size_t p = i + 1;
    while (p < prompt.size() && is_word((unsigned char)prompt[p])) ++p;
    const size_t type_end = p;
    bool match = type_end > i + 1 && p < prompt.size() && prompt[p] == ':';
    size_t close = std::string_view::npos;
    if (match) {
      close = prompt.find('>', p + 1);
      match = close != std::string_view::npos && close > p + 1;
    }
    if (!match) {
      out.prompt += prompt[i++];
      continue;
    }
    const std::string type(prompt.substr(i + 1, type_end - i - 1));
    const std::string args(prompt.substr(p + 1, close - p - 1));
    const std::string tag(prompt.substr(i, close - i + 1));
    if (type != "lora" && type != "lyco")
      throw Error("", "prompt", "only <lora:…> extra networks in sdc", tag);
    LoraTag lora = parse_lora(args, tag);
    bool merged = false;
    for (LoraTag& existing : out.loras)
      if (existing.name == lora.name) {
        existing.weight += lora.weight;
        merged = true;
      }
    if (!merged) out.loras.push_back(lora);
    for (const LoraTag& l : out.loras)
      if (!std::isfinite(float(l.weight)))
        throw Error("", "prompt", "a multiplier within float range for LoRA " + l.name,
                    python_str(l.weight));
    i = close + 1;
  }
  return out;
}

}  // namespace sdc::server::a1111
