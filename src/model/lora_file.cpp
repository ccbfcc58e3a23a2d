// Parsing a LoRA file: grouping its tensors into modules (lora_names.h reads each name), the
// checks (lora_checks.h), the module accessors, and the summary for `sdc inspect`.
#include "model/lora_file.h"

#include <algorithm>
#include <fstream>

#include "common/error.h"
#include "io/open_file.h"
#include "io/safetensors.h"
#include "model/lora_checks.h"
#include "model/lora_names.h"

namespace sdc::model {
namespace {

std::string join_first(const std::vector<std::string>& names, size_t n) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < n; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > n) out += ", … (" + std::to_string(names.size()) + " in all)";
  return out;
}

}  // namespace

const char* lora_naming_name(LoraNaming n) {
  switch (n) {
    case LoraNaming::Kohya:
      return "kohya";
    case LoraNaming::Peft:
      return "peft";
    case LoraNaming::DiffusersLegacy:
      return "diffusers-legacy";
  }
  return "?";
}

const char* lora_kind_name(LoraKind k) {
  switch (k) {
    case LoraKind::LoRA:
      return "LoRA";
    case LoraKind::LoHa:
      return "LoHa";
    case LoraKind::LoKr:
      return "LoKr";
  }
  return "?";
}

const char* lora_base_name(LoraBase b) {
  switch (b) {
    case LoraBase::Unknown:
      return "unknown";
    case LoraBase::SD1:
      return "SD1.x";
    case LoraBase::SD2:
      return "SD2.x";
    case LoraBase::SDXL:
      return "SDXL";
  }
  return "?";
}

const TensorRef* LoraModule::part(const std::string& role) const {
  auto it = parts.find(role);
  return it == parts.end() ? nullptr : &it->second;
}

float LoraModule::alpha_scale() const {
  return rank > 0 ? alpha / float(rank) : 1.0f;
}

std::string LoraModule::first_key() const {
  for (const char* role : {"lora_up", "lora_down", "hada_w1_a", "lokr_w1", "lokr_w1_a"})
    if (auto it = part_keys.find(role); it != part_keys.end()) return it->second;
  return part_keys.empty() ? name : part_keys.begin()->second;
}

namespace {
int64_t tail_numel(const Shape& s, size_t from) {
  int64_t n = 1;
  for (size_t i = from; i < s.size(); ++i) n *= s[i];
  return n;
}
}  // namespace

int64_t LoraModule::in_features() const {
  switch (kind) {
    case LoraKind::LoRA: {
      const Shape& d = parts.at("lora_down").shape;
      if (const TensorRef* mid = part("lora_mid")) return d[1] * tail_numel(mid->shape, 2);
      return tail_numel(d, 1);
    }
    case LoraKind::LoHa: {
      const Shape& b = parts.at("hada_w1_b").shape;
      if (const TensorRef* t = part("hada_t1")) return b[1] * tail_numel(t->shape, 2);
      return tail_numel(b, 1);
    }
    case LoraKind::LoKr: {
      const int64_t b =
          has("lokr_w1") ? parts.at("lokr_w1").shape[1] : parts.at("lokr_w1_b").shape[1];
      int64_t d;
      if (has("lokr_w2")) {
        d = tail_numel(parts.at("lokr_w2").shape, 1);
      } else if (const TensorRef* t = part("lokr_t2")) {
        d = parts.at("lokr_w2_b").shape[1] * tail_numel(t->shape, 2);
      } else {
        d = tail_numel(parts.at("lokr_w2_b").shape, 1);
      }
      return b * d;
    }
  }
  return 0;
}

int64_t LoraModule::out_features() const {
  switch (kind) {
    case LoraKind::LoRA:
      return parts.at("lora_up").shape[0];
    case LoraKind::LoHa:
      return has("hada_t1") ? parts.at("hada_w1_a").shape[1] : parts.at("hada_w1_a").shape[0];
    case LoraKind::LoKr: {
      const int64_t a =
          has("lokr_w1") ? parts.at("lokr_w1").shape[0] : parts.at("lokr_w1_a").shape[0];
      const int64_t c = has("lokr_w2")   ? parts.at("lokr_w2").shape[0]
                        : has("lokr_t2") ? parts.at("lokr_w2_a").shape[1]
                                         : parts.at("lokr_w2_a").shape[0];
      return a * c;
    }
  }
  return 0;
}

std::set<LoraNaming> LoraFile::namings() const {
  std::set<LoraNaming> out;
  for (const LoraModule& m : modules) out.insert(m.naming);
  return out;
}

std::set<LoraKind> LoraFile::kinds() const {
  std::set<LoraKind> out;
  for (const LoraModule& m : modules) out.insert(m.kind);
  return out;
}

bool LoraFile::has_dora() const {
  return std::any_of(modules.begin(), modules.end(),
                     [](const LoraModule& m) { return m.dora != DoraAxis::None; });
}

std::string LoraFile::format() const {
  std::string out;
  for (LoraNaming n : namings()) out += (out.empty() ? "" : "+") + std::string(lora_naming_name(n));
  std::string kinds_str;
  for (LoraKind k : kinds())
    kinds_str += (kinds_str.empty() ? "" : "/") + std::string(lora_kind_name(k));
  if (!kinds_str.empty()) out += " " + kinds_str;
  if (has_dora()) out += "+DoRA";
  return out.empty() ? "empty" : out;
}

bool is_lora_file(const io::TensorFile& file) {
  if (file.tensors.size() == 0) return false;
  for (const auto& [name, t] : file.tensors.all())
    if (!parse_lora_key(name)) return false;
  return true;
}

LoraFile parse_lora(const io::TensorFile& file) {
  LoraFile out;
  out.path = file.path;
  out.container = file.format;
  out.metadata = file.metadata;
  if (file.tensors.size() == 0) throw Error(file.path, "", "LoRA tensors", "none");

  std::vector<std::string> unknown;
  std::map<std::string, size_t> index;  // lookup -> module
  std::vector<bool> naming_known;       // per module
  for (const auto& [name, t] : file.tensors.all()) {
    std::optional<LoraKeyParts> k = parse_lora_key(name);
    if (!k) {
      unknown.push_back(name);
      continue;
    }
    auto [it, fresh] = index.emplace(k->lookup, out.modules.size());
    if (fresh) {
      LoraModule m;
      m.name = k->module;
      m.lookup = k->lookup;
      m.naming = k->naming;
      m.component = k->component;
      out.modules.push_back(std::move(m));
    }
    LoraModule& m = out.modules[it->second];
    if (m.has(k->role))
      throw Error(file.path, name, "one " + k->role + " per module",
                  "also " + m.part_keys.at(k->role));
    // ".alpha" exists in every spelling: the module's other parts say which one it is.
    if (fresh) naming_known.push_back(!k->naming_from_alpha);
    if (!naming_known[it->second] && !k->naming_from_alpha) {
      m.naming = k->naming;
      naming_known[it->second] = true;
    }
    m.parts.emplace(k->role, t);
    m.part_keys.emplace(k->role, name);
  }
  if (!unknown.empty())
    throw Error(file.path, unknown.front(),
                "LoRA tensor names (….lora_down.weight, ….lora_A.weight, ….hada_w1_a, "
                "….lokr_w1, ….alpha …)",
                std::to_string(unknown.size()) + " other names: " + join_first(unknown, 5));
  for (LoraModule& m : out.modules) check_lora_module(m, file.path);
  guess_lora_base(out);
  return out;
}

namespace {
// True when `path` starts like a safetensors file: an 8-byte header length, then the JSON '{'.
// Checked before open_tensor_file(), whose pickle sniffing (0x80, protocol 2..5 in the first two
// bytes) also matches safetensors header lengths such as 0x0280.
bool looks_like_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char head[9] = {};
  return in.read(head, sizeof head) && head[8] == '{';
}
}  // namespace

LoraFile load_lora(const std::string& path) {
  if (looks_like_safetensors(path)) return parse_lora(io::read_safetensors(path));
  return parse_lora(io::open_tensor_file(path));
}

LoraSummary summarize_lora(const LoraFile& lora) {
  LoraSummary s;
  s.format = lora.format();
  s.base = lora.base;
  s.base_evidence = lora.base_evidence;
  bool first = true;
  for (const LoraModule& m : lora.modules) {
    switch (m.component) {
      case LoraComponent::UNet:
        ++s.unet_modules;
        break;
      case LoraComponent::TextEncoder:
        ++s.text_encoder_modules;
        break;
      case LoraComponent::TextEncoder2:
        ++s.text_encoder2_modules;
        break;
    }
    if (m.rank > 0) {
      s.min_rank = first ? m.rank : std::min(s.min_rank, m.rank);
      s.max_rank = first ? m.rank : std::max(s.max_rank, m.rank);
      first = false;
    }
    s.alphas.insert(m.alpha);
    ++s.kinds[lora_kind_name(m.kind)];
  }
  return s;
}

LoraSummary summarize_lora(const io::TensorFile& file) {
  return summarize_lora(parse_lora(file));
}

}  // namespace sdc::model
