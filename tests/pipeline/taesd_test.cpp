// TAESD against the fixture tiny-sd15/taesd (madebyollin's taesd.py and diffusers'
// AutoencoderTiny): every decode and encode case from each file form, the bad inputs of the
// reader (message names file and key; the weights already loaded are left as they were).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "common/feature_fixtures.h"
#include "common/fixtures.h"
#include "io/safetensors.h"
#include "model/model_loader.h"
#include "model/taesd_file.h"
#include "pipeline/plan_cache.h"
#include "pipeline/taesd_codec.h"
#include "pipeline/taesd_fixture.h"

namespace sdc {
namespace {
namespace fs = std::filesystem;

const test::FeatureGroup& group() {
  return test::taesd_group();
}

constexpr double kNetworkTol = test::kTaesdNetworkTol;

using test::taesd_only;

// Every decode case, one image at a time (batch-1 plans), against taesd.py's output.
void expect_decodes(const model::LoadedModel& m, const std::string& form) {
  ASSERT_TRUE(m.taesd.decoder) << form;
  pipeline::PlanCache plans(m, {});
  int cases = 0;
  for (const auto& c : group().cases["cases"]) {
    if (c["kind"] != "taesd_decode") continue;
    ++cases;
    const Shape s = c["latent_shape"].get<Shape>();
    const std::vector<float> latents = group().f32(c["tensors"]["latents"]);
    const std::vector<float> ref = group().f32(c["tensors"]["output"]);
    const size_t per_latent = size_t(s[1] * s[2] * s[3]), per_image = size_t(3 * 64 * s[2] * s[3]);
    for (int64_t b = 0; b < s[0]; ++b) {
      const std::vector<float> out = pipeline::taesd_decode(
          plans, std::span<const float>(latents).subspan(size_t(b) * per_latent, per_latent),
          int(s[2]), int(s[3]));
      ASSERT_EQ(out.size(), per_image);
      const std::vector<float> want(ref.begin() + std::ptrdiff_t(size_t(b) * per_image),
                                    ref.begin() + std::ptrdiff_t(size_t(b + 1) * per_image));
      EXPECT_LE(test::rel_max_diff(out.data(), want), kNetworkTol)
          << form << " " << c["id"] << " image " << b;
    }
  }
  EXPECT_EQ(cases, 3);
}

void expect_encodes(const model::LoadedModel& m, const std::string& form) {
  ASSERT_TRUE(m.taesd.encoder) << form;
  pipeline::PlanCache plans(m, {});
  int cases = 0;
  for (const auto& c : group().cases["cases"]) {
    if (c["kind"] != "taesd_encode") continue;
    ++cases;
    const int h = c["height"], w = c["width"];
    const std::vector<float> out =
        pipeline::taesd_encode(plans, group().f32(c["tensors"]["image"]), h, w);
    EXPECT_LE(test::rel_max_diff(out.data(), group().f32(c["tensors"]["latents"])), kNetworkTol)
        << form << " " << c["id"];
  }
  EXPECT_EQ(cases, 2);
}

TEST(Taesd, OriginalFilesDecodeAndEncodeEveryCase) {
  expect_decodes(taesd_only(group().path("taesd_decoder.safetensors")), "taesd_decoder");
  expect_encodes(taesd_only(group().path("taesd_encoder.safetensors")), "taesd_encoder");
}

TEST(Taesd, DiffusersAutoencoderTinyFolderGivesTheSameNetworks) {
  const model::LoadedModel m = taesd_only(group().path("diffusers"));
  EXPECT_TRUE(m.taesd.decoder && m.taesd.encoder);
  expect_decodes(m, "AutoencoderTiny");
  expect_encodes(m, "AutoencoderTiny");
}

TEST(Taesd, FolderOfOriginalFilesLoadsBoth) {
  // A1111's models/VAE-taesd/ layout: both files side by side (the fixture folder also holds
  // the diffusers folder; the original files win).
  const model::LoadedModel m = taesd_only(group().dir);
  EXPECT_TRUE(m.taesd.decoder && m.taesd.encoder);
  expect_decodes(m, "folder");
}

TEST(Taesd, BatchTwoGraphMatchesTooAndPreviewIsFullSize) {
  const model::LoadedModel m = taesd_only(group().path("diffusers"));
  pipeline::PlanCache plans(m, {});
  const auto& c = group().find_case("taesd/decode/2x4x8x8");
  const std::vector<float> latents = group().f32(c["tensors"]["latents"]);
  const io::Image preview = pipeline::preview_image(
      plans, "auto", std::span<const float>(latents).subspan(0, 4 * 8 * 8), 8, 8);
  EXPECT_EQ(preview.width, 64);
  EXPECT_EQ(preview.height, 64);
  // The PNG the fixture wrote from the same output: round(clamp(x, 0, 1) * 255).
  const io::Image want = io::read_image(group().path("images/taesd_decode_2x4x8x8_b0.png"));
  ASSERT_EQ(want.rgb.size(), preview.rgb.size());
  int worst = 0;
  for (size_t i = 0; i < want.rgb.size(); ++i)
    worst = std::max(worst, std::abs(int(want.rgb[i]) - int(preview.rgb[i])));
  EXPECT_LE(worst, 1);
  const io::Image cheap = pipeline::preview_image(
      plans, "cheap", std::span<const float>(latents).subspan(0, 4 * 8 * 8), 8, 8);
  EXPECT_EQ(cheap.width, 8);
}

std::string error_of(const std::string& path) {
  WeightMap into;
  try {
    model::load_taesd(path, into, "--taesd");
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Taesd, BadInputsNameTheFileAndKey) {
  test::TempDir dir;
  EXPECT_NE(error_of(dir.file("missing")).find("no such file"), std::string::npos);
  // A Stable Diffusion checkpoint is not a TAESD.
  EXPECT_NE(error_of(test::tiny("model.safetensors")).find("a TAESD decoder or encoder"),
            std::string::npos);
  // An empty folder.
  EXPECT_NE(error_of(dir.path()).find("none of them in the folder"), std::string::npos);
  // A decoder with one tensor of another shape (a 16-channel latent space, as TAESD3's).
  const io::TensorFile dec = io::read_safetensors(group().path("taesd_decoder.safetensors"));
  WeightMap tensors = dec.tensors;
  std::vector<float> wide(64 * 16 * 9, 0.f);
  TensorRef t;
  t.dtype = DType::F32;
  t.shape = {64, 16, 3, 3};
  t.data = wide.data();
  t.nbytes = wide.size() * 4;
  tensors.set("1.weight", t);
  const std::string bad = dir.file("taesd3_decoder.safetensors");
  io::write_safetensors(bad, tensors);
  const std::string msg = error_of(bad);
  EXPECT_NE(msg.find("taesd3_decoder.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("1.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("4 latent channels"), std::string::npos) << msg;
  // A missing tensor.
  tensors = dec.tensors;
  tensors.erase("19.bias");
  const std::string partial = dir.file("partial.safetensors");
  io::write_safetensors(partial, tensors);
  const std::string msg2 = error_of(partial);
  EXPECT_NE(msg2.find("19.bias"), std::string::npos) << msg2;
  EXPECT_NE(msg2.find("missing"), std::string::npos) << msg2;
  // The weights loaded before a failing --taesd are left untouched.
  WeightMap into;
  model::load_taesd(group().path("taesd_decoder.safetensors"), into, "--taesd");
  const size_t before = into.size();
  EXPECT_THROW(model::load_taesd(partial, into, "--taesd"), Error);
  EXPECT_EQ(into.size(), before);
  EXPECT_TRUE(model::taesd_parts(into).decoder);
}

// At bf16 TAESD's blocks keep their residual sums in bf16, as the denoiser does: no f32 copy of a
// block's input, so no conversion steps between its convolutions (the VAE's decoder keeps f32
// ones); the fixture's decode cases stay within bf16's error of taesd.py's.
TEST(Taesd, Bf16PlansStoreResidualsAsBf16) {
  if (!cpu::precision_available(cpu::Precision::BF16)) GTEST_SKIP() << "no bf16 here";
  const model::LoadedModel m = taesd_only(group().path("diffusers"));
  cpu::PlanOptions o;
  o.precision = cpu::Precision::BF16;
  pipeline::PlanCache plans(m, o);
  auto converts = [](const cpu::Plan& p) {
    int n = 0;
    for (const auto& st : p.steps()) n += st.kind == "Convert";
    return n;
  };
  EXPECT_EQ(converts(plans.taesd_decoder(1, 8, 8)), 0);
  EXPECT_LE(converts(plans.taesd_encoder(1, 64, 64)), 1);  // at most the image's bf16 copy
  int cases = 0;
  for (const auto& c : group().cases["cases"]) {
    if (c["kind"] != "taesd_decode") continue;
    const Shape s = c["latent_shape"].get<Shape>();
    const std::vector<float> latents = group().f32(c["tensors"]["latents"]);
    const std::vector<float> ref = group().f32(c["tensors"]["output"]);
    const size_t per_latent = size_t(s[1] * s[2] * s[3]), per_image = size_t(3 * 64 * s[2] * s[3]);
    const std::vector<float> out = pipeline::taesd_decode(
        plans, std::span<const float>(latents).first(per_latent), int(s[2]), int(s[3]));
    const std::vector<float> want(ref.begin(), ref.begin() + std::ptrdiff_t(per_image));
    // bf16 weights and activations, residuals included: 1.4-1.8e-2 here.
    EXPECT_LE(test::rel_max_diff(out.data(), want), 4e-2) << c["id"];
    ++cases;
  }
  EXPECT_EQ(cases, 3);
}

TEST(Taesd, PlanCacheSaysWhatIsMissing) {
  const model::LoadedModel m = taesd_only(group().path("taesd_decoder.safetensors"));
  pipeline::PlanCache plans(m, {});
  try {
    plans.taesd_encoder(1, 64, 64);
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--taesd"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("TAESD encoder"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sdc
