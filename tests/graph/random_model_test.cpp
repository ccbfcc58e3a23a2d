// The random SD1.x model: its weight tables name and shape every tensor exactly as a real
// single-file checkpoint does (checked against the tiny fixture, and against SD1.5's published
// parameter counts), and its values are deterministic, independent per tensor and well scaled.
#include "model/random_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "common/error.h"
#include "graph/builders/taesd.h"
#include "model/taesd_file.h"
#include "tiny_model.h"

namespace sdc::model {
namespace {

std::map<std::string, Shape> as_map(const WeightShapes& s) {
  std::map<std::string, Shape> m;
  for (const auto& [name, shape] : s)
    EXPECT_TRUE(m.emplace(name, shape).second) << "twice: " << name;
  return m;
}

std::map<std::string, Shape> fixture_map(const WeightMap& w, const std::string& prefix) {
  std::map<std::string, Shape> m;
  for (const std::string& name : w.names_with_prefix(prefix)) m[name] = w.get(name).shape;
  return m;
}

int64_t count(const WeightShapes& s) {
  int64_t n = 0;
  for (const auto& [name, shape] : s) n += shape_numel(shape);
  return n;
}

TEST(RandomModel, TablesMatchTheTinyFixtureExactly) {
  const WeightMap& w = test::tiny_weights();
  EXPECT_EQ(as_map(unet_weight_shapes(test::tiny_unet_params())),
            fixture_map(w, "model.diffusion_model."));
  EXPECT_EQ(as_map(text_encoder_weight_shapes(test::tiny_text_encoder_params())),
            fixture_map(w, "cond_stage_model.transformer.text_model."));
  EXPECT_EQ(as_map(vae_weight_shapes(test::tiny_vae_params())),
            fixture_map(w, "first_stage_model."));
  EXPECT_EQ(as_map(controlnet_weight_shapes(test::tiny_controlnet_params())),
            fixture_map(test::tiny_controlnet_weights(), "control_model."));
  // build-info.json's parameter counts.
  EXPECT_EQ(count(unet_weight_shapes(test::tiny_unet_params())), 2446788);
  EXPECT_EQ(count(vae_weight_shapes(test::tiny_vae_params())), 516519);
  EXPECT_EQ(count(text_encoder_weight_shapes(test::tiny_text_encoder_params())), 1621696);
  EXPECT_EQ(count(controlnet_weight_shapes(test::tiny_controlnet_params())), 1073200);
}

TEST(RandomModel, ShapeCheckListsEveryDifference) {
  const WeightShapes table = unet_weight_shapes(test::tiny_unet_params());
  EXPECT_TRUE(check_weight_shapes(test::tiny_weights(), table, "model.diffusion_model.").ok());
  WeightMap w = test::tiny_weights();
  const std::string gone1 = "model.diffusion_model.out.2.bias";
  const std::string gone2 = "model.diffusion_model.input_blocks.4.1.proj_in.weight";
  const std::string stray = "model.diffusion_model.input_blocks.4.1.lora.weight";
  const std::string bent = "model.diffusion_model.time_embed.0.weight";
  w.erase(gone1);
  w.erase(gone2);
  w.set(stray, w.get(bent));
  TensorRef t = w.get(bent);
  t.shape = {32, 128};
  w.set(bent, t);
  const WeightShapeCheck c = check_weight_shapes(w, table, "model.diffusion_model.");
  EXPECT_FALSE(c.ok());
  EXPECT_EQ(c.missing, (std::vector<std::string>{gone2, gone1}));  // in table order
  EXPECT_EQ(c.unexpected, std::vector<std::string>{stray});
  EXPECT_EQ(c.wrong_shape,
            std::vector<std::string>{bent + ": expected [128, 32], found [32, 128]"});
  EXPECT_NE(c.report().find("missing: " + gone1), std::string::npos) << c.report();
  // Other components' tensors are not "unexpected".
  EXPECT_TRUE(check_weight_shapes(test::tiny_weights(), vae_weight_shapes(test::tiny_vae_params()),
                                  "first_stage_model.")
                  .ok());
}

TEST(RandomModel, FullSizeParameterCountsAreSd15s) {
  // diffusers' UNet2DConditionModel / AutoencoderKL / transformers' CLIPTextModel (ViT-L/14 text
  // tower, without the position_ids buffer) / ControlNetModel parameter counts for SD1.5.
  EXPECT_EQ(count(unet_weight_shapes({})), 859520964);
  EXPECT_EQ(count(vae_weight_shapes({})), 83653863);
  EXPECT_EQ(count(text_encoder_weight_shapes({})), 123060480);
  EXPECT_EQ(unet_weight_shapes({}).size(), 686u);
}

TEST(RandomModel, ControlNetIsTheUNetsDownHalfPlusHintAndZeroConvs) {
  // Every UNet tensor of time_embed / input_blocks / middle_block appears under control_model.
  std::map<std::string, Shape> cn = as_map(controlnet_weight_shapes({}));
  int64_t shared = 0;
  for (const auto& [name, shape] : unet_weight_shapes({})) {
    const std::string local = name.substr(std::string("model.diffusion_model.").size());
    if (local.rfind("output_blocks.", 0) == 0 || local.rfind("out.", 0) == 0) continue;
    auto it = cn.find("control_model." + local);
    ASSERT_NE(it, cn.end()) << local;
    EXPECT_EQ(it->second, shape) << local;
    shared += shape_numel(shape);
    cn.erase(it);
  }
  // What is left: the hint encoder 3->16->16->32->32->96->96->256->320 (3x3 convs) ...
  const int64_t hint = (16 * 3 * 9 + 16) + (16 * 16 * 9 + 16) + (32 * 16 * 9 + 32) +
                       (32 * 32 * 9 + 32) + (96 * 32 * 9 + 96) + (96 * 96 * 9 + 96) +
                       (256 * 96 * 9 + 256) + (320 * 256 * 9 + 320);
  // ... and 1x1 zero convs on the 12 skips (320 x4, 640 x3, 1280 x5) and the middle block.
  auto one = [](int64_t c) { return c * c + c; };
  const int64_t zero = 4 * one(320) + 3 * one(640) + 6 * one(1280);
  int64_t rest = 0;
  for (const auto& [name, shape] : cn) {
    EXPECT_TRUE(name.find("input_hint_block.") != std::string::npos ||
                name.find("zero_convs.") != std::string::npos ||
                name.find("middle_block_out.") != std::string::npos)
        << name;
    rest += shape_numel(shape);
  }
  EXPECT_EQ(rest, hint + zero);
  EXPECT_EQ(count(controlnet_weight_shapes({})), shared + hint + zero);
}

TEST(RandomModel, ValuesDependOnlyOnSeedAndName) {
  const WeightShapes vae = vae_weight_shapes(test::tiny_vae_params());
  const WeightMap a = make_random_weights(vae, 7, DType::F32);
  const WeightMap b = make_random_weights(vae, 7, DType::F32);
  const WeightMap c = make_random_weights(vae, 8, DType::F32);
  const WeightShapes subset(vae.begin() + 10, vae.begin() + 12);
  const WeightMap d = make_random_weights(subset, 7, DType::F32);
  ASSERT_EQ(a.size(), vae.size());
  for (const auto& [name, shape] : vae) {
    const TensorRef& ta = a.get(name, shape);
    EXPECT_EQ(ta.dtype, DType::F32);
    EXPECT_EQ(ta.to_f32(), b.get(name).to_f32()) << name;
    EXPECT_NE(ta.to_f32(), c.get(name).to_f32()) << name;
    if (const TensorRef* td = d.find(name)) {
      EXPECT_EQ(ta.to_f32(), td->to_f32()) << name;
    }
  }
  EXPECT_EQ(d.size(), 2u);
  // Two tensors of the same shape get different values.
  const std::string q = "first_stage_model.decoder.mid.attn_1.q.weight";
  const std::string k = "first_stage_model.decoder.mid.attn_1.k.weight";
  EXPECT_NE(a.get(q).to_f32(), a.get(k).to_f32());
}

TEST(RandomModel, HalfPrecisionCopiesRoundTheSameValues) {
  const WeightShapes te = text_encoder_weight_shapes(test::tiny_text_encoder_params());
  const WeightMap f32 = make_random_weights(te, 3, DType::F32);
  const WeightMap bf16 = make_random_weights(te, 3, DType::BF16);
  const WeightMap f16 = make_random_weights(te, 3, DType::F16);
  for (const auto& [name, shape] : te) {
    const std::vector<float> ref = f32.get(name).to_f32();
    const TensorRef& tb = bf16.get(name);
    const TensorRef& th = f16.get(name);
    ASSERT_EQ(tb.dtype, DType::BF16);
    ASSERT_EQ(th.dtype, DType::F16);
    ASSERT_EQ(tb.nbytes, ref.size() * 2);
    const auto* pb = static_cast<const uint16_t*>(tb.data);
    const auto* ph = static_cast<const uint16_t*>(th.data);
    for (size_t i = 0; i < ref.size(); i += 97) {
      EXPECT_EQ(pb[i], f32_to_bf16(ref[i])) << name;
      EXPECT_EQ(ph[i], f32_to_f16(ref[i])) << name;
    }
  }
}

TEST(RandomModel, ValuesAreScaledPerKind) {
  const WeightShapes unet = unet_weight_shapes(test::tiny_unet_params());
  const WeightMap w = make_random_weights(unet, 11, DType::F32);
  auto stats = [&](const std::string& name) {
    const std::vector<float> v = w.get("model.diffusion_model." + name).to_f32();
    double s = 0, s2 = 0;
    for (float x : v) s += x, s2 += double(x) * x;
    const double mean = s / double(v.size());
    return std::pair<double, double>{mean, std::sqrt(s2 / double(v.size()) - mean * mean)};
  };
  auto [m1, s1] = stats("output_blocks.0.0.in_layers.2.weight");  // [64, 128, 3, 3]
  EXPECT_NEAR(m1, 0.0, 0.002);
  EXPECT_NEAR(s1, 1.0 / std::sqrt(128.0 * 9.0), 0.002);
  auto [m2, s2] = stats("middle_block.1.transformer_blocks.0.ff.net.2.weight");  // [64, 256]
  EXPECT_NEAR(s2, 1.0 / 16.0, 0.003);
  auto [m3, s3] = stats("out.0.weight");  // a GroupNorm scale
  EXPECT_NEAR(m3, 1.0, 0.05);
  EXPECT_GT(s3, 0.02);
  EXPECT_LT(s3, 0.2);
  auto [m4, s4] = stats("out.2.bias");
  EXPECT_LT(std::fabs(m4), 0.05);
  EXPECT_LT(s4, 0.05);
}

TEST(RandomModel, ComponentsCanBeMadeAlone) {
  RandomModelParts parts;
  parts.unet = parts.text_encoder = false;
  parts.vae = true;
  const WeightMap vae = make_random_sd15(5, DType::BF16, parts);
  EXPECT_EQ(vae.size(), vae_weight_shapes({}).size());
  EXPECT_EQ(vae.names_with_prefix("first_stage_model.").size(), vae.size());
  EXPECT_EQ(vae.get("first_stage_model.decoder.conv_in.weight").shape, (Shape{512, 4, 3, 3}));
}

TEST(RandomModel, TaesdHasTheLayoutTheLoaderChecksAndBuilds) {
  RandomModelParts parts;
  parts.unet = parts.text_encoder = parts.vae = false;
  parts.taesd = true;
  const WeightMap random = make_random_sd15(3, DType::F16, parts);
  EXPECT_EQ(random.size(), taesd_weight_shapes().size());
  // The checks a downloaded TAESD goes through (names, shapes, element types, nothing missing).
  WeightMap into;
  const TaesdParts got = add_bundled_taesd("random", random, into);
  EXPECT_TRUE(got.decoder);
  EXPECT_TRUE(got.encoder);
  int64_t decoder_params = 0, encoder_params = 0;
  for (const auto& [name, shape] : taesd_weight_shapes())
    (name.starts_with(kTaesdDecoderPrefix) ? decoder_params : encoder_params) += shape_numel(shape);
  EXPECT_EQ(decoder_params, 1222531);  // taesd_decoder.pth: 1.22M parameters
  EXPECT_EQ(encoder_params, 1222532);
  EXPECT_GT(graph::build_taesd_decoder(into, 1, 8, 8).macs(), 0);
  EXPECT_GT(graph::build_taesd_encoder(into, 1, 64, 64).macs(), 0);
}

TEST(RandomModel, RefusesNonFloatTypes) {
  try {
    make_random_weights(vae_weight_shapes({}), 1, DType::I8);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("F32, F16 or BF16"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("I8"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sdc::model
