// Parsing LoRA tensor names into modules, and the per-module consistency checks.
#include "model/lora_file.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <fstream>
#include <string_view>

#include "common/error.h"
#include "io/open_file.h"
#include "io/safetensors.h"

namespace sdc::model {
namespace {

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// Parts a kohya/LyCORIS module may have, spelled as after the module name and its '.'.
struct KohyaPart {
  std::string_view suffix, role;
};
constexpr KohyaPart kKohyaParts[] = {
    {"lora_down.weight", "lora_down"},
    {"lora_up.weight", "lora_up"},
    {"lora_mid.weight", "lora_mid"},
    {"alpha", "alpha"},
    {"dora_scale", "dora_scale"},
    {"hada_w1_a", "hada_w1_a"},
    {"hada_w1_b", "hada_w1_b"},
    {"hada_w2_a", "hada_w2_a"},
    {"hada_w2_b", "hada_w2_b"},
    {"hada_t1", "hada_t1"},
    {"hada_t2", "hada_t2"},
    {"lokr_w1", "lokr_w1"},
    {"lokr_w1_a", "lokr_w1_a"},
    {"lokr_w1_b", "lokr_w1_b"},
    {"lokr_w2", "lokr_w2"},
    {"lokr_w2_a", "lokr_w2_a"},
    {"lokr_w2_b", "lokr_w2_b"},
    {"lokr_t2", "lokr_t2"},
};

// Suffixes of dotted (peft / diffusers) names. Longer suffixes first where one ends another.
struct DottedPart {
  std::string_view suffix, role;
  LoraNaming naming;
  bool is_alpha;
};
constexpr DottedPart kDottedParts[] = {
    {".lora_A.weight", "lora_down", LoraNaming::Peft, false},
    {".lora_B.weight", "lora_up", LoraNaming::Peft, false},
    {".lora_magnitude_vector.weight", "dora_scale", LoraNaming::Peft, false},
    {".lora_magnitude_vector", "dora_scale", LoraNaming::Peft, false},
    {".lora_linear_layer.down.weight", "lora_down", LoraNaming::DiffusersLegacy, false},
    {".lora_linear_layer.up.weight", "lora_up", LoraNaming::DiffusersLegacy, false},
    {".lora.down.weight", "lora_down", LoraNaming::DiffusersLegacy, false},
    {".lora.up.weight", "lora_up", LoraNaming::DiffusersLegacy, false},
    {".lora_down.weight", "lora_down", LoraNaming::DiffusersLegacy, false},
    {".lora_up.weight", "lora_up", LoraNaming::DiffusersLegacy, false},
    {".alpha", "alpha", LoraNaming::Peft, true},
};

// One tensor name understood: which module, which part.
struct ParsedKey {
  std::string module, lookup, role;
  LoraNaming naming = LoraNaming::Kohya;
  LoraComponent component = LoraComponent::UNet;
  bool naming_from_alpha = false;  // ".alpha" says nothing about peft vs legacy
};

std::optional<ParsedKey> parse_kohya(const std::string& key) {
  struct Prefix {
    std::string_view text, normalised;
    LoraComponent component;
  };
  static constexpr Prefix kPrefixes[] = {
      {"lora_unet_", "lora_unet_", LoraComponent::UNet},
      {"lora_te1_", "lora_te_", LoraComponent::TextEncoder},
      {"lora_te2_", "lora_te2_", LoraComponent::TextEncoder2},
      {"lora_te_", "lora_te_", LoraComponent::TextEncoder},
  };
  for (const Prefix& p : kPrefixes) {
    if (!starts_with(key, p.text)) continue;
    const size_t dot = key.find('.');
    if (dot == std::string::npos) return std::nullopt;
    const std::string_view suffix = std::string_view(key).substr(dot + 1);
    for (const KohyaPart& part : kKohyaParts) {
      if (suffix != part.suffix) continue;
      ParsedKey k;
      k.module = key.substr(0, dot);
      k.lookup = std::string(p.normalised) + k.module.substr(p.text.size());
      k.role = part.role;
      k.naming = LoraNaming::Kohya;
      k.component = p.component;
      return k;
    }
    return std::nullopt;
  }
  return std::nullopt;
}

// Component from a dotted module path, and the path under its component prefix.
bool split_component(std::string path, bool peft_wrapped, LoraComponent& component,
                     std::string& lookup) {
  if (starts_with(path, "base_model.model.")) {
    path = path.substr(std::strlen("base_model.model."));
    peft_wrapped = true;
  }
  struct Prefix {
    std::string_view text;
    LoraComponent component;
    std::string_view normalised;
  };
  static constexpr Prefix kPrefixes[] = {
      {"unet.", LoraComponent::UNet, "unet."},
      {"text_encoder.", LoraComponent::TextEncoder, "text_encoder."},
      {"text_encoder_2.", LoraComponent::TextEncoder2, "text_encoder_2."},
  };
  for (const Prefix& p : kPrefixes) {
    if (starts_with(path, p.text)) {
      component = p.component;
      lookup = std::string(p.normalised) + path.substr(p.text.size());
      return true;
    }
  }
  // No component folder: a peft adapter of one model, or an old attention-processor file of the
  // UNet. The path itself says which network it is.
  static constexpr std::string_view kUNetRoots[] = {"down_blocks.", "mid_block.", "up_blocks.",
                                                    "conv_in",      "conv_out",   "time_embedding.",
                                                    "conv_norm_out"};
  if (starts_with(path, "text_model.")) {
    component = LoraComponent::TextEncoder;
    lookup = "text_encoder." + path;
    return true;
  }
  for (std::string_view root : kUNetRoots) {
    if (starts_with(path, root)) {
      component = LoraComponent::UNet;
      lookup = "unet." + path;
      return true;
    }
  }
  (void)peft_wrapped;
  return false;
}

std::optional<ParsedKey> parse_dotted(const std::string& key) {
  ParsedKey k;
  std::string module;
  // Old diffusers attention processors: <attn>.processor.to_q_lora.down.weight.
  for (std::string_view tail :
       {std::string_view("_lora.down.weight"), std::string_view("_lora.up.weight")}) {
    if (!ends_with(key, tail)) continue;
    std::string head = key.substr(0, key.size() - tail.size());  // <attn>[.processor].to_q
    const size_t dot = head.rfind('.');
    if (dot == std::string::npos) return std::nullopt;
    const std::string proj = head.substr(dot + 1);
    std::string attn = head.substr(0, dot);
    if (ends_with(attn, ".processor")) attn.resize(attn.size() - std::strlen(".processor"));
    if (proj != "to_q" && proj != "to_k" && proj != "to_v" && proj != "to_out") return std::nullopt;
    if (!split_component(attn, false, k.component, k.lookup)) return std::nullopt;
    const bool text = k.component != LoraComponent::UNet;
    std::string target;
    if (proj == "to_out") {
      target = text ? "out_proj" : "to_out.0";
    } else {
      target = text ? proj.substr(3) + "_proj" : proj;
    }
    k.module = attn + "." + target;
    k.lookup += "." + target;
    k.role = tail == "_lora.down.weight" ? "lora_down" : "lora_up";
    k.naming = LoraNaming::DiffusersLegacy;
    return k;
  }
  for (const DottedPart& part : kDottedParts) {
    if (!ends_with(key, part.suffix)) continue;
    module = key.substr(0, key.size() - part.suffix.size());
    if (!split_component(module, false, k.component, k.lookup)) return std::nullopt;
    k.module = module;
    k.role = part.role;
    k.naming = part.naming;
    k.naming_from_alpha = part.is_alpha;
    return k;
  }
  return std::nullopt;
}

std::optional<ParsedKey> parse_key(const std::string& key) {
  if (starts_with(key, "lora_unet_") || starts_with(key, "lora_te")) return parse_kohya(key);
  return parse_dotted(key);
}

std::string join_first(const std::vector<std::string>& names, size_t n) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < n; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > n) out += ", … (" + std::to_string(names.size()) + " in all)";
  return out;
}

float scalar_value(const TensorRef& t, const std::string& file, const std::string& key) {
  if (t.numel() != 1)
    throw Error(file, key, "a single number (alpha)", "shape " + shape_str(t.shape));
  float v = 0;
  switch (t.dtype) {
    case DType::I64: {
      int64_t x;
      std::memcpy(&x, t.data, 8);
      v = float(x);
      break;
    }
    case DType::I32: {
      int32_t x;
      std::memcpy(&x, t.data, 4);
      v = float(x);
      break;
    }
    default:
      if (!is_float(t.dtype))
        throw Error(file, key, "a number", "dtype " + std::string(dtype_name(t.dtype)));
      v = t.to_f32()[0];
  }
  if (!std::isfinite(v)) throw Error(file, key, "a finite alpha", std::to_string(v));
  return v;
}

// Shape checks of one module's parts. `dim(role, i)` reads a part's dimension.
class ModuleChecker {
 public:
  ModuleChecker(const LoraModule& m, const std::string& file) : m_(m), file_(file) {}

  const Shape& shape(const std::string& role) const { return m_.parts.at(role).shape; }
  std::string key(const std::string& role) const { return m_.part_keys.at(role); }

  void require(const std::vector<std::string>& roles, const std::string& what) const {
    std::vector<std::string> missing;
    for (const auto& r : roles)
      if (!m_.has(r)) missing.push_back(r);
    if (missing.empty()) return;
    std::vector<std::string> present;
    for (const auto& [role, t] : m_.parts) present.push_back(role);
    throw Error(file_, m_.name, what + " (" + join_first(roles, 8) + ")",
                "only " + join_first(present, 8));
  }
  void ndim(const std::string& role, std::initializer_list<size_t> allowed) const {
    const Shape& s = shape(role);
    for (size_t n : allowed)
      if (s.size() == n) return;
    std::string exp;
    for (size_t n : allowed) exp += (exp.empty() ? "" : " or ") + std::to_string(n);
    throw Error(file_, key(role), exp + " dimensions", "shape " + shape_str(s));
  }
  // Dimensions after the first two must be 1 (a 1x1 kernel).
  void pointwise(const std::string& role) const {
    const Shape& s = shape(role);
    for (size_t i = 2; i < s.size(); ++i)
      if (s[i] != 1) throw Error(file_, key(role), "a 1x1 kernel", "shape " + shape_str(s));
  }
  // Rank agreement: dimension `da` of `a` equals dimension `db` of `b`.
  void same_rank(const std::string& a, size_t da, const std::string& b, size_t db) const {
    const int64_t x = shape(a)[da], y = shape(b)[db];
    if (x == y) return;
    throw Error(
        file_, m_.name,
        "the same rank in " + a + " (dim " + std::to_string(da) + ") and " + b + " (dim " +
            std::to_string(db) + ")",
        "rank mismatch: " + a + " " + shape_str(shape(a)) + ", " + b + " " + shape_str(shape(b)));
  }

 private:
  const LoraModule& m_;
  const std::string& file_;
};

void check_module(LoraModule& m, const std::string& file) {
  ModuleChecker c(m, file);
  for (const auto& [role, t] : m.parts) {
    if (role == "alpha") continue;
    if (!is_float(t.dtype))
      throw Error(file, m.part_keys.at(role), "a float tensor",
                  "dtype " + std::string(dtype_name(t.dtype)));
    for (int64_t d : t.shape)
      if (d <= 0)
        throw Error(file, m.part_keys.at(role), "non-empty dimensions", shape_str(t.shape));
  }
  const bool lora = m.has("lora_down") || m.has("lora_up") || m.has("lora_mid");
  const bool hada = std::any_of(m.parts.begin(), m.parts.end(),
                                [](const auto& p) { return starts_with(p.first, "hada_"); });
  const bool lokr = std::any_of(m.parts.begin(), m.parts.end(),
                                [](const auto& p) { return starts_with(p.first, "lokr_"); });
  if (int(lora) + int(hada) + int(lokr) != 1) {
    std::vector<std::string> present;
    for (const auto& [role, t] : m.parts) present.push_back(role);
    throw Error(file, m.name, "the parts of one LoRA, LoHa or LoKr module",
                join_first(present, 12));
  }
  if (lora) {
    m.kind = LoraKind::LoRA;
    c.require({"lora_down", "lora_up"}, "both lora_down and lora_up");
    c.ndim("lora_down", {2, 4});
    c.ndim("lora_up", {2, 4});
    c.pointwise("lora_up");
    if (!m.has("lora_mid")) {
      c.same_rank("lora_up", 1, "lora_down", 0);
    } else {
      c.ndim("lora_mid", {4});
      c.pointwise("lora_down");
      c.same_rank("lora_mid", 0, "lora_up", 1);
      c.same_rank("lora_mid", 1, "lora_down", 0);
    }
    m.rank = c.shape("lora_down")[0];
  } else if (hada) {
    m.kind = LoraKind::LoHa;
    c.require({"hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"}, "all four LoHa factors");
    if (m.has("hada_t1") != m.has("hada_t2"))
      throw Error(file, m.name, "both hada_t1 and hada_t2 or neither", "only one");
    for (const char* w : {"hada_w1_a", "hada_w2_a"}) c.ndim(w, {2});
    for (const char* w : {"hada_w1_b", "hada_w2_b"}) c.ndim(w, {2, 4});
    if (m.has("hada_t1")) {
      // Tucker form: t [r, r, kh, kw], w_a [r, Co], w_b [r, Ci].
      for (const char* w : {"hada_t1", "hada_t2"}) c.ndim(w, {4});
      c.same_rank("hada_t1", 0, "hada_w1_a", 0);
      c.same_rank("hada_t1", 1, "hada_w1_b", 0);
      c.same_rank("hada_t2", 0, "hada_w2_a", 0);
      c.same_rank("hada_t2", 1, "hada_w2_b", 0);
    } else {
      c.same_rank("hada_w1_a", 1, "hada_w1_b", 0);
      c.same_rank("hada_w2_a", 1, "hada_w2_b", 0);
    }
    // Both Hadamard factors must rebuild to the same [Co, K].
    auto dims = [&](const char* a, const char* b, const char* t) {
      if (m.has(t))
        return std::make_pair(c.shape(a)[1], c.shape(b)[1] * c.shape(t)[2] * c.shape(t)[3]);
      int64_t k = 1;
      for (size_t i = 1; i < c.shape(b).size(); ++i) k *= c.shape(b)[i];
      return std::make_pair(c.shape(a)[0], k);
    };
    const auto d1 = dims("hada_w1_a", "hada_w1_b", "hada_t1");
    const auto d2 = dims("hada_w2_a", "hada_w2_b", "hada_t2");
    if (d1 != d2)
      throw Error(file, m.name, "hada_w1 and hada_w2 products of the same shape",
                  shape_str({d1.first, d1.second}) + " and " + shape_str({d2.first, d2.second}));
    m.rank = c.shape("hada_w1_b")[0];
  } else {
    m.kind = LoraKind::LoKr;
    const bool w1 = m.has("lokr_w1"), w2 = m.has("lokr_w2");
    if (!w1) c.require({"lokr_w1_a", "lokr_w1_b"}, "lokr_w1 or both lokr_w1_a and lokr_w1_b");
    if (!w2) c.require({"lokr_w2_a", "lokr_w2_b"}, "lokr_w2 or both lokr_w2_a and lokr_w2_b");
    if (w1 && (m.has("lokr_w1_a") || m.has("lokr_w1_b")))
      throw Error(file, m.name, "lokr_w1 or lokr_w1_a/_b", "both");
    if (w2 && (m.has("lokr_w2_a") || m.has("lokr_w2_b")))
      throw Error(file, m.name, "lokr_w2 or lokr_w2_a/_b", "both");
    if (m.has("lokr_t2") && w2) throw Error(file, m.name, "lokr_t2 with lokr_w2_a/_b", "lokr_w2");
    if (w1) c.ndim("lokr_w1", {2});
    if (w2) c.ndim("lokr_w2", {2, 4});
    if (!w1) {
      c.ndim("lokr_w1_a", {2});
      c.ndim("lokr_w1_b", {2});
      c.same_rank("lokr_w1_a", 1, "lokr_w1_b", 0);
    }
    if (!w2) {
      c.ndim("lokr_w2_a", {2});
      c.ndim("lokr_w2_b", {2, 4});
      if (m.has("lokr_t2")) {
        c.ndim("lokr_t2", {4});
        c.same_rank("lokr_t2", 0, "lokr_w2_a", 0);
        c.same_rank("lokr_t2", 1, "lokr_w2_b", 0);
      } else {
        c.same_rank("lokr_w2_a", 1, "lokr_w2_b", 0);
      }
    }
    if (!w1 && !w2) c.same_rank("lokr_w1_b", 0, "lokr_w2_b", 0);
    m.rank = !w1 ? c.shape("lokr_w1_b")[0] : !w2 ? c.shape("lokr_w2_b")[0] : 0;
  }
  if (m.has("alpha")) {
    m.has_alpha = true;
    m.alpha = scalar_value(m.parts.at("alpha"), file, m.part_keys.at("alpha"));
  } else {
    m.alpha = float(m.rank);
  }
  if (m.has("dora_scale")) {
    const TensorRef& d = m.parts.at("dora_scale");
    const std::string& key = m.part_keys.at("dora_scale");
    const int64_t co = m.out_features();
    const bool peft = m.naming != LoraNaming::Kohya;
    // LyCORIS decides the axis by the shape: [Co, 1, …] per output, [1, Ci, …] per input.
    // PEFT's lora_magnitude_vector is always per output ([Co] or [1, Co, 1, 1] for convs).
    if (peft || d.shape.size() <= 1 || d.shape[0] == co) {
      if (d.numel() != co)
        throw Error(file, key, std::to_string(co) + " magnitudes (one per output channel)",
                    "shape " + shape_str(d.shape));
      m.dora = DoraAxis::Output;
    } else {
      if (d.shape[0] != 1 || d.shape.size() < 2 || d.numel() != d.shape[1])
        throw Error(file, key,
                    "a magnitude of shape [" + std::to_string(co) + ", 1, …] or [1, Ci, …]",
                    "shape " + shape_str(d.shape));
      m.dora = DoraAxis::Input;
    }
  }
}

struct BaseGuess {
  LoraBase base = LoraBase::Unknown;
  std::string evidence;
  void offer(LoraBase b, const std::string& why) {
    if (int(b) > int(base)) {
      base = b;
      evidence = why;
    }
  }
};

bool names_projection(const std::string& lookup, const char* kohya, const char* dotted) {
  return ends_with(lookup, kohya) || ends_with(lookup, dotted);
}

// The number after `word` and one '_' or '.' in `name` ("…transformer_blocks_3_…" -> 3), or -1.
int64_t index_after(const std::string& name, const std::string& word) {
  const size_t at = name.find(word);
  if (at == std::string::npos) return -1;
  size_t i = at + word.size() + 1;
  if (i > name.size() || (name[i - 1] != '_' && name[i - 1] != '.')) return -1;
  int64_t v = -1;
  for (; i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])) && v < 1000000; ++i)
    v = (v < 0 ? 0 : v * 10) + (name[i] - '0');
  return v;
}

void guess_base(LoraFile& f) {
  BaseGuess g;
  for (const LoraModule& m : f.modules) {
    if (m.component == LoraComponent::TextEncoder2) {
      g.offer(LoraBase::SDXL, "a second text encoder: " + m.name);
      continue;
    }
    if (m.lookup.find("label_emb") != std::string::npos ||
        m.lookup.find("add_embedding") != std::string::npos) {
      g.offer(LoraBase::SDXL, "SDXL's size embedding: " + m.name);
      continue;
    }
    if (m.component == LoraComponent::UNet &&
        (names_projection(m.lookup, "attn2_to_k", "attn2.to_k") ||
         names_projection(m.lookup, "attn2_to_v", "attn2.to_v"))) {
      const int64_t w = m.in_features();
      if (w == 2048) g.offer(LoraBase::SDXL, "cross-attention width 2048 in " + m.name);
      if (w == 1024) g.offer(LoraBase::SD2, "cross-attention width 1024 in " + m.name);
      if (w == 768) g.offer(LoraBase::SD1, "cross-attention width 768");
    }
    if (m.component == LoraComponent::TextEncoder &&
        (names_projection(m.lookup, "self_attn_q_proj", "self_attn.q_proj"))) {
      const int64_t w = m.in_features();
      if (w == 1024) g.offer(LoraBase::SD2, "text-encoder width 1024 in " + m.name);
      if (w == 768) g.offer(LoraBase::SD1, "text-encoder width 768");
    }
    // SD1.x and SD2.x have one transformer block per attention; SDXL has 2 or 10.
    if (m.component == LoraComponent::UNet && index_after(m.lookup, "transformer_blocks") >= 1)
      g.offer(LoraBase::SDXL, "transformer depth above 1 in " + m.name);
    // CLIP ViT-L (SD1.x) has 12 layers; OpenCLIP ViT-H (SD2.x) has 24.
    if (m.component == LoraComponent::TextEncoder && index_after(m.lookup, "layers") >= 12)
      g.offer(LoraBase::SD2, "text-encoder layer 12 or above in " + m.name);
  }
  f.base = g.base;
  f.base_evidence = g.evidence;
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
    if (!parse_key(name)) return false;
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
    std::optional<ParsedKey> k = parse_key(name);
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
  for (LoraModule& m : out.modules) check_module(m, file.path);
  guess_base(out);
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
