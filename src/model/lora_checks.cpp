// Per-module consistency checks of a parsed LoRA, and the architecture its names and shapes show.
#include "model/lora_checks.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <string_view>

#include "common/error.h"

namespace sdc::model {
namespace {

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
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

}  // namespace

void check_lora_module(LoraModule& m, const std::string& file) {
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

void guess_lora_base(LoraFile& f) {
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

}  // namespace sdc::model
