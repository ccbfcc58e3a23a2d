// Matching LoRA modules to weights and merging their deltas in f32.
#include "model/lora_merger.h"

#include <cmath>
#include <filesystem>
#include <map>

#include "common/error.h"
#include "model/lora_delta.h"

namespace sdc::model {
namespace {

std::string basename(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

std::string join_first(const std::vector<std::string>& names, size_t n) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < n; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > n) out += ", …";
  return out;
}

// A LoRA trained for another Stable Diffusion generation cannot fit; say so before listing
// hundreds of unmatched keys.
void check_base(const LoraFile& lora, const LoraTargets& targets) {
  if (lora.base != LoraBase::SDXL && lora.base != LoraBase::SD2) return;
  const int64_t ctx = targets.context_width();
  const LoraBase model_base = ctx == 2048   ? LoraBase::SDXL
                              : ctx == 1024 ? LoraBase::SD2
                                            : LoraBase::SD1;
  if (model_base == lora.base) return;
  throw Error(lora.path + ": this LoRA is for " + lora_base_name(lora.base) + ", not SD1.5 (" +
              lora.base_evidence + ")");
}

}  // namespace

// W ← W + scale·Δ, then DoRA's renormalisation when the module has a magnitude.
void apply_lora_module(std::vector<float>& w, const Shape& shape, const LoraModule& m, float scale,
                  const std::string& file, const std::string& weight_name) {
  const std::vector<float> delta = lora_delta(m);
  for (size_t i = 0; i < w.size(); ++i) w[i] += scale * delta[i];
  if (m.dora == DoraAxis::None) return;

  const std::vector<float> mag = m.part("dora_scale")->to_f32();
  const int64_t co = shape[0];
  const int64_t k = int64_t(w.size()) / co;  // Ci·kh·kw
  const std::string& key = m.part_keys.at("dora_scale");
  auto zero_norm = [&](int64_t ch) {
    return Error(file, key, "a non-zero norm of " + weight_name + " + ΔW in every channel",
                 "zero norm in channel " + std::to_string(ch));
  };
  if (m.dora == DoraAxis::Output) {
    for (int64_t o = 0; o < co; ++o) {
      float* row = w.data() + o * k;
      double ss = 0;
      for (int64_t j = 0; j < k; ++j) ss += double(row[j]) * row[j];
      if (ss == 0) throw zero_norm(o);
      const float f = float(mag[size_t(o)] / std::sqrt(ss));
      for (int64_t j = 0; j < k; ++j) row[j] *= f;
    }
    return;
  }
  // Per input channel (LyCORIS wd_on_out = false): norm over output channels and kernel.
  const int64_t ci = int64_t(mag.size());  // = shape[1], checked by check_lora_fits
  const int64_t s = k / ci;
  std::vector<double> ss(static_cast<size_t>(ci), 0.0);
  for (int64_t o = 0; o < co; ++o)
    for (int64_t j = 0; j < k; ++j)
      ss[size_t(j / s)] += double(w[size_t(o * k + j)]) * w[size_t(o * k + j)];
  std::vector<float> f(static_cast<size_t>(ci));
  for (int64_t c = 0; c < ci; ++c) {
    if (ss[size_t(c)] == 0) throw zero_norm(c);
    f[size_t(c)] = float(mag[size_t(c)] / std::sqrt(ss[size_t(c)]));
  }
  for (int64_t o = 0; o < co; ++o)
    for (int64_t j = 0; j < k; ++j) w[size_t(o * k + j)] *= f[size_t(j / s)];
}

std::string LoraReport::summary() const {
  return basename(file) + ": " + std::to_string(unet_modules) + " UNet modules, " +
         std::to_string(text_encoder_modules) + " text-encoder modules";
}

std::vector<LoraMatch> match_lora(const WeightMap& weights, const LoraTargets& targets,
                                  const LoraFile& lora, bool ignore_unmatched,
                                  std::vector<std::string>* skipped) {
  check_base(lora, targets);
  std::vector<LoraMatch> matches;
  std::vector<std::string> unmatched;
  bool missing_text_encoder = false, missing_unet = false;
  std::map<std::string, const LoraModule*> by_weight;
  for (const LoraModule& m : lora.modules) {
    const LoraTarget* t = targets.find(m.lookup);
    if (!t) {
      unmatched.push_back(m.first_key());
      missing_text_encoder |=
          m.component == LoraComponent::TextEncoder && !targets.has_text_encoder();
      missing_unet |= m.component == LoraComponent::UNet && !targets.has_unet();
      continue;
    }
    if (!t->ambiguous.empty())
      throw Error(lora.path, m.name, "a name that stands for one weight",
                  "one shared by " + join_first(t->ambiguous, 4));
    auto [it, fresh] = by_weight.emplace(t->weight, &m);
    if (!fresh)
      throw Error(lora.path, m.name, "one module per weight",
                  "a second module for " + t->weight + " (also " + it->second->name + ")");
    check_lora_fits(m, weights.get(t->weight).shape, t->weight, lora.path);
    matches.push_back({&m, t->weight, t->component});
  }
  if (!unmatched.empty() && !ignore_unmatched) {
    std::string why;
    if (missing_unet) why += "; the model has no UNet weights";
    if (missing_text_encoder) why += "; the model has no text-encoder weights";
    throw Error(lora.path, "", "every LoRA module to match a weight of the model",
                std::to_string(unmatched.size()) + " of " + std::to_string(lora.modules.size()) +
                    " modules matching none: " + join_first(unmatched, 5) + why);
  }
  if (skipped) *skipped = std::move(unmatched);
  return matches;
}

LoraReport merge_lora(WeightMap& weights, const LoraTargets& targets, const LoraFile& lora,
                      float scale, bool ignore_unmatched) {
  LoraReport report;
  report.file = lora.path;
  report.format = lora.format();
  report.scale = scale;
  if (!std::isfinite(scale))
    throw Error(lora.path, "scale", "a finite number", std::to_string(scale));
  const std::vector<LoraMatch> matches =
      match_lora(weights, targets, lora, ignore_unmatched, &report.skipped);

  // Merge into staged copies first; the WeightMap changes only once every module succeeded.
  std::map<std::string, std::vector<float>> staged;
  for (const LoraMatch& match : matches) {
    const TensorRef& w = weights.get(match.weight);
    auto it = staged.find(match.weight);
    if (it == staged.end()) it = staged.emplace(match.weight, w.to_f32()).first;
    apply_lora_module(it->second, w.shape, *match.module, scale, lora.path, match.weight);
    if (match.component == LoraComponent::UNet)
      ++report.unet_modules;
    else
      ++report.text_encoder_modules;
    if (match.module->rank > 0) report.ranks.insert(match.module->rank);
  }
  for (auto& [name, values] : staged) {
    const TensorRef& old = weights.get(name);
    auto buf = std::make_shared<std::vector<float>>(std::move(values));
    TensorRef merged;
    merged.dtype = DType::F32;
    merged.shape = old.shape;
    merged.data = buf->data();
    merged.nbytes = buf->size() * sizeof(float);
    merged.owner = buf;
    merged.source = old.source;
    weights.set(name, std::move(merged));
  }
  return report;
}

}  // namespace sdc::model
