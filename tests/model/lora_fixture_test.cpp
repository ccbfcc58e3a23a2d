// The tiny-sd15 LoRA fixtures merged into the tiny model: both files match all 277 UNet and 18
// text-encoder modules, give the same merged weights at scales 1.0 and 0.7, and agree with
// W + S·alpha/rank·up@down computed here for a Linear, a 1x1 conv and a 3x3 conv module listed
// in build-info.json.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <memory>

#include "common/fixtures.h"
#include "io/safetensors.h"
#include "model/key_mapping.h"
#include "model/lora_merger.h"

namespace sdc::model {
namespace {

// The tiny model (model.safetensors, LDM names) and the table from LoRA spellings to its weights,
// built through model::ldm_to_diffusers.
struct FixtureModel {
  WeightMap weights;
  std::unique_ptr<LoraTargets> targets;
};

FixtureModel fixture_model(const std::string& file = "model.safetensors") {
  FixtureModel m;
  m.weights = io::read_safetensors(test::tiny(file)).tensors;
  m.targets = std::make_unique<LoraTargets>(m.weights);
  return m;
}

double rel_diff(const TensorRef& a, const std::vector<float>& b) {
  const std::vector<float> x = a.to_f32();
  double max_ref = 0, max_diff = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    max_ref = std::max(max_ref, double(std::fabs(b[i])));
    max_diff = std::max(max_diff, double(std::fabs(x[i] - b[i])));
  }
  return max_ref == 0 ? max_diff : max_diff / max_ref;
}

nlohmann::json build_info() {
  std::ifstream in(test::tiny("build-info.json"));
  return nlohmann::json::parse(in);
}

TEST(LoraFixture, BothFilesMatchEveryModule) {
  for (const char* file : {"lora-kohya.safetensors", "lora-peft.safetensors"}) {
    FixtureModel m = fixture_model();
    const LoraReport r = merge_lora(m.weights, *m.targets, load_lora(test::tiny(file)), 1.0f);
    EXPECT_EQ(r.unet_modules, 277) << file;
    EXPECT_EQ(r.text_encoder_modules, 18) << file;
    EXPECT_EQ(r.ranks, (std::set<int64_t>{4})) << file;
    EXPECT_TRUE(r.skipped.empty());
    EXPECT_EQ(r.summary(), std::string(file) + ": 277 UNet modules, 18 text-encoder modules");
  }
}

TEST(LoraFixture, KohyaAndPeftGiveTheSameWeights) {
  for (float scale : {1.0f, 0.7f}) {
    FixtureModel kohya = fixture_model(), peft = fixture_model();
    std::map<std::string, const void*> before_k, before_p;
    for (const auto& [name, t] : kohya.weights.all()) before_k[name] = t.data;
    for (const auto& [name, t] : peft.weights.all()) before_p[name] = t.data;
    merge_lora(kohya.weights, *kohya.targets, load_lora(test::tiny("lora-kohya.safetensors")),
               scale);
    merge_lora(peft.weights, *peft.targets, load_lora(test::tiny("lora-peft.safetensors")), scale);
    int changed = 0;
    for (const auto& [name, t] : kohya.weights.all()) {
      const TensorRef& p = peft.weights.get(name);
      const bool merged_k = t.data != before_k.at(name);
      const bool merged_p = p.data != before_p.at(name);
      ASSERT_EQ(merged_k, merged_p) << name;
      if (!merged_k) continue;
      ++changed;
      EXPECT_LE(rel_diff(t, p.to_f32()), 1e-6) << name << " at scale " << scale;
    }
    EXPECT_EQ(changed, 295);
  }
}

TEST(LoraFixture, ModulesAsBuildInfoListsThem) {
  const LoraFile kohya = load_lora(test::tiny("lora-kohya.safetensors"));
  std::map<std::string, const LoraModule*> by_name;
  for (const LoraModule& m : kohya.modules) by_name[m.name] = &m;
  const nlohmann::json modules = build_info()["lora_modules"];
  ASSERT_EQ(modules.size(), 295u);
  const FixtureModel model = fixture_model();
  for (const auto& entry : modules) {
    const std::string key = entry["key"];
    ASSERT_TRUE(by_name.count(key)) << key;
    // The kohya spelling and the diffusers module path name the same weight.
    const LoraTarget* by_key = model.targets->find(by_name[key]->lookup);
    const LoraTarget* by_module = model.targets->find(entry["module"].get<std::string>());
    ASSERT_TRUE(by_key && by_module) << key;
    EXPECT_EQ(by_key->weight, by_module->weight) << key;
    EXPECT_EQ(by_name[key]->rank, entry["rank"].get<int64_t>()) << key;
    EXPECT_EQ(by_name[key]->alpha, entry["alpha"].get<float>()) << key;
  }
}

// W + S·alpha/rank·up@down (3x3: up[:, :, 0, 0] @ down.flatten(1)), element by element.
TEST(LoraFixture, MergedWeightsMatchHandComputation) {
  const float scale = 0.7f;
  FixtureModel m = fixture_model();
  const FixtureModel base = fixture_model();
  const io::TensorFile raw = io::read_safetensors(test::tiny("lora-kohya.safetensors"));
  merge_lora(m.weights, *m.targets, load_lora(test::tiny("lora-kohya.safetensors")), scale);
  std::set<std::string> kinds_seen;
  const nlohmann::json info = build_info();
  for (const auto& entry : info["lora_modules"]) {
    const std::string kind = entry["kind"];
    if (!kinds_seen.insert(kind).second) continue;  // the first module of each kind
    const std::string key = entry["key"], module = entry["module"];
    const float alpha = entry["alpha"].get<float>();
    const int64_t rank = entry["rank"].get<int64_t>();
    const LoraTarget* target = m.targets->find(module);
    ASSERT_NE(target, nullptr) << module;
    const TensorRef& w0 = base.weights.get(target->weight);
    const std::vector<float> w = w0.to_f32();
    const std::vector<float> up = raw.tensors.get(key + ".lora_up.weight").to_f32();
    const std::vector<float> down = raw.tensors.get(key + ".lora_down.weight").to_f32();
    EXPECT_EQ(raw.tensors.get(key + ".alpha").to_f32()[0], alpha);
    const int64_t co = w0.shape[0], k = w0.numel() / co;
    ASSERT_EQ(int64_t(up.size()), co * rank) << key;
    ASSERT_EQ(int64_t(down.size()), rank * k) << key;
    const Shape expected_shape = kind == "Conv2d3x3"   ? Shape{co, k / 9, 3, 3}
                                 : kind == "Conv2d1x1" ? Shape{co, k, 1, 1}
                                                       : Shape{co, k};
    EXPECT_EQ(w0.shape, expected_shape) << key;
    std::vector<float> want(w.size());
    for (int64_t o = 0; o < co; ++o)
      for (int64_t j = 0; j < k; ++j) {
        double d = 0;
        for (int64_t r = 0; r < rank; ++r)
          d += double(up[size_t(o * rank + r)]) * down[size_t(r * k + j)];
        want[size_t(o * k + j)] = float(w[size_t(o * k + j)] + double(scale) * alpha / rank * d);
      }
    EXPECT_LE(rel_diff(m.weights.get(target->weight), want), 1e-6) << key;
  }
  EXPECT_EQ(kinds_seen, (std::set<std::string>{"Linear", "Conv2d1x1", "Conv2d3x3"}));
}

// The kohya file with every UNet module renamed to its original-LDM path
// (lora_unet_input_blocks_1_1_proj_in …), as A1111-era tools wrote them.
TEST(LoraFixture, LdmStyleKohyaNamesMergeTheSame) {
  const io::TensorFile kohya = io::read_safetensors(test::tiny("lora-kohya.safetensors"));
  std::map<std::string, std::string> rename;  // kohya module -> LDM-style kohya module
  const nlohmann::json info = build_info();
  for (const auto& entry : info["lora_modules"]) {
    const std::string module = entry["module"];
    if (module.rfind("unet.", 0) != 0) continue;
    const std::optional<std::string> ldm = diffusers_to_ldm(module + ".weight");
    ASSERT_TRUE(ldm) << module;
    const std::string prefix = "model.diffusion_model.";
    ASSERT_EQ(ldm->rfind(prefix, 0), 0u) << *ldm;
    rename[entry["key"]] =
        "lora_unet_" + kohya_flatten(ldm->substr(prefix.size(), ldm->size() - prefix.size() - 7));
  }
  ASSERT_EQ(rename.size(), 277u);
  EXPECT_EQ(rename.at("lora_unet_down_blocks_0_attentions_0_proj_in"),
            "lora_unet_input_blocks_1_1_proj_in");
  WeightMap renamed;
  for (const auto& [name, t] : kohya.tensors.all()) {
    const size_t dot = name.find('.');
    auto it = rename.find(name.substr(0, dot));
    renamed.set(it == rename.end() ? name : it->second + name.substr(dot), t);
  }
  test::TempDir dir;
  io::write_safetensors(dir.file("ldm.safetensors"), renamed);

  FixtureModel a = fixture_model(), b = fixture_model();
  const LoraReport ra =
      merge_lora(a.weights, *a.targets, load_lora(dir.file("ldm.safetensors")), 0.7f);
  merge_lora(b.weights, *b.targets, load_lora(test::tiny("lora-kohya.safetensors")), 0.7f);
  EXPECT_EQ(ra.summary(), "ldm.safetensors: 277 UNet modules, 18 text-encoder modules");
  for (const auto& [name, t] : a.weights.all())
    ASSERT_EQ(t.to_f32(), b.weights.get(name).to_f32()) << name;
}

// merge_loras with FILE:SCALE arguments, in order: +0.7 of one file, then -0.7 of the other,
// which is the same LoRA: the weights come back to the model's.
TEST(LoraFixture, SeveralFilesWithScalesInOrder) {
  WeightMap weights = io::read_safetensors(test::tiny("model.safetensors")).tensors;
  const WeightMap original = weights;
  const std::vector<LoraReport> reports =
      merge_loras(weights, {parse_lora_arg(test::tiny("lora-kohya.safetensors") + ":0.7"),
                            parse_lora_arg(test::tiny("lora-peft.safetensors") + ":-0.7")});
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[0].summary(),
            "lora-kohya.safetensors: 277 UNet modules, 18 text-encoder modules");
  EXPECT_EQ(reports[1].summary(),
            "lora-peft.safetensors: 277 UNet modules, 18 text-encoder modules");
  EXPECT_FLOAT_EQ(reports[1].scale, -0.7f);
  int merged = 0;
  for (const auto& [name, t] : weights.all()) {
    const TensorRef& before = original.get(name);
    if (t.data == before.data) continue;
    ++merged;
    EXPECT_LE(rel_diff(t, before.to_f32()), 1e-6) << name;
  }
  EXPECT_EQ(merged, 295);
}

// fp16 weights: merged in f32 (stored F32), untouched ones stay F16 views into the file.
TEST(LoraFixture, HalfPrecisionModel) {
  FixtureModel half = fixture_model("model-fp16.safetensors");
  const FixtureModel half_base = fixture_model("model-fp16.safetensors");
  FixtureModel full = fixture_model();
  const FixtureModel full_base = fixture_model();
  std::map<std::string, const void*> before;
  for (const auto& [name, t] : half.weights.all()) before[name] = t.data;
  const LoraFile lora = load_lora(test::tiny("lora-kohya.safetensors"));
  merge_lora(half.weights, *half.targets, lora, 1.0f);
  merge_lora(full.weights, *full.targets, lora, 1.0f);
  int merged = 0;
  for (const auto& [name, t] : half.weights.all()) {
    if (t.data == before.at(name)) {
      EXPECT_EQ(t.dtype, half_base.weights.get(name).dtype) << name;
      continue;
    }
    ++merged;
    ASSERT_EQ(t.dtype, DType::F32) << name;
    // The same delta was added to the fp16 weights as to the fp32 ones.
    const std::vector<float> h = t.to_f32(), h0 = half_base.weights.get(name).to_f32();
    const std::vector<float> f = full.weights.get(name).to_f32(),
                             f0 = full_base.weights.get(name).to_f32();
    std::vector<float> delta_full(f.size());
    for (size_t i = 0; i < f.size(); ++i) delta_full[i] = (f[i] - f0[i]) + h0[i];
    EXPECT_LE(rel_diff(t, delta_full), 1e-6) << name;
  }
  EXPECT_EQ(merged, 295);
  EXPECT_EQ(half.weights.get("model.diffusion_model.out.0.weight").dtype, DType::F16);
}

}  // namespace
}  // namespace sdc::model
