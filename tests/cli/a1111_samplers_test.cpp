// Every case of the A1111 sampler references (tiny-sd15/samplers, made with A1111 v1.10.1's own
// sampler code) through `sdc generate` with the default --compat a1111: final latents within the
// case's tolerance (relative to max|ref|), the PNG within its level tolerance of A1111's
// (truncated) PNG, and the infotext fields A1111 wrote. DPM adaptive is a smoke test (its step
// controller is not stable under rounding, see the fixture's README).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "common/fixtures.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "pipeline/generation_params.h"

namespace sdc {
namespace {

const nlohmann::json& sampler_cases() {
  static const nlohmann::json j = [] {
    std::ifstream in(test::tiny("samplers/cases.json"));
    return nlohmann::json::parse(in);
  }();
  return j;
}

std::vector<float> sampler_ref(const std::string& key) {
  static const io::TensorFile f =
      io::read_safetensors(test::tiny("samplers/reference.safetensors"));
  return f.tensors.get(key).to_f32();
}

std::vector<std::string> case_names() {
  std::vector<std::string> names;
  for (const auto& [name, c] : sampler_cases()["cases"].items()) names.push_back(name);
  return names;
}

std::string fmt(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

class A1111Case : public ::testing::TestWithParam<std::string> {};

TEST_P(A1111Case, MatchesA1111) {
  const std::string name = GetParam();
  const nlohmann::json& c = sampler_cases()["cases"][name];
  test::TempDir dir;
  std::vector<std::string> args = {"generate",
                                   "-m",
                                   test::tiny("model.safetensors"),
                                   "--model-config",
                                   test::tiny("diffusers"),
                                   "-p",
                                   c["prompt"].get<std::string>(),
                                   "-W",
                                   std::to_string(c["width"].get<int>()),
                                   "-H",
                                   std::to_string(c["height"].get<int>()),
                                   "--steps",
                                   std::to_string(c["steps"].get<int>()),
                                   "--cfg-scale",
                                   fmt(c["cfg"].get<double>()),
                                   "--seed",
                                   std::to_string(c["seed"].get<int64_t>()),
                                   "--sampler",
                                   c["sampler"].get<std::string>(),
                                   "--scheduler",
                                   c["scheduler"].get<std::string>(),
                                   "--rng",
                                   c["rng"] == "philox" ? "nv" : "cpu",
                                   "--precision",
                                   "f32",
                                   "-o",
                                   dir.file("out.png"),
                                   "--save-latents",
                                   dir.file("latents.safetensors")};
  if (!c["negative_prompt"].get<std::string>().empty()) {
    args.push_back("-n");
    args.push_back(c["negative_prompt"].get<std::string>());
  }
  if (c["mode"] == "img2img") {
    for (const std::string& a :
         {std::string("--init-image"), test::tiny("samplers/" + c["init_image"].get<std::string>()),
          std::string("--strength"), fmt(c["denoising_strength"].get<double>())})
      args.push_back(a);
  }
  const test::CommandResult r = test::run_sdc(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;

  const std::vector<float> mine =
      io::read_safetensors(dir.file("latents.safetensors")).tensors.get("latents").to_f32();
  const std::vector<float> ref = sampler_ref(c["tensors"]["latents"].get<std::string>());
  ASSERT_EQ(mine.size(), ref.size());
  const double d = test::rel_max_diff(mine.data(), ref);
  std::printf("%s latents rel diff %.2e\n", name.c_str(), d);
  const auto& tol = c["tolerance"];
  if (tol["fragile"].get<bool>()) {
    // Smoke: finite latents of A1111's magnitude, the same image size.
    for (float v : mine) ASSERT_TRUE(std::isfinite(v));
    EXPECT_LE(d, 1.0);
  } else {
    EXPECT_LE(d, tol["latents_rel"].get<double>());
    const io::Image ours = io::read_image(dir.file("out.png"));
    const io::Image want = io::read_image(test::tiny("samplers/" + c["png"].get<std::string>()));
    ASSERT_EQ(ours.rgb.size(), want.rgb.size());
    int worst = 0;
    for (size_t i = 0; i < ours.rgb.size(); ++i)
      worst = std::max(worst, std::abs(int(ours.rgb[i]) - int(want.rgb[i])));
    EXPECT_LE(worst, tol["png_levels"].get<int>());
  }

  // The infotext: A1111's fields (sdc adds "Model").
  std::string text;
  for (const auto& [key, value] : io::read_png_text(dir.file("out.png")))
    if (key == "parameters") text = value;
  const pipeline::GenerationParams got = pipeline::parse_a1111_parameters(text);
  const pipeline::GenerationParams want =
      pipeline::parse_a1111_parameters(c["infotext"].get<std::string>());
  EXPECT_EQ(got.sampler, want.sampler);
  EXPECT_EQ(got.schedule_type, want.schedule_type);
  EXPECT_EQ(got.steps, want.steps);
  EXPECT_EQ(got.cfg_scale, want.cfg_scale);
  EXPECT_EQ(got.seed, want.seed);
  EXPECT_EQ(got.width, want.width);
  EXPECT_EQ(got.height, want.height);
  EXPECT_EQ(got.rng, want.rng);
  EXPECT_EQ(got.denoising_strength, want.denoising_strength);
  EXPECT_EQ(got.extra, want.extra) << text;
}

INSTANTIATE_TEST_SUITE_P(Samplers, A1111Case, ::testing::ValuesIn(case_names()),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
}  // namespace sdc

namespace sdc {
namespace {

// A1111 batches: image i of a batch seeded S is the image of seed S + i alone, also for the SDE
// samplers (one Brownian tree per image seed) and the NV source.
TEST(A1111Batch, SecondImageEqualsItsSeedAlone) {
  test::TempDir dir;
  auto args = [&](const std::string& seed, const std::string& batch, const std::string& out) {
    return std::vector<std::string>{"generate",
                                    "-m",
                                    test::tiny("model.safetensors"),
                                    "--model-config",
                                    test::tiny("diffusers"),
                                    "-p",
                                    "a cat",
                                    "-W",
                                    "64",
                                    "-H",
                                    "64",
                                    "--steps",
                                    "4",
                                    "--sampler",
                                    "DPM++ 2M SDE Karras",
                                    "--seed",
                                    seed,
                                    "--batch-size",
                                    batch,
                                    "--precision",
                                    "f32",
                                    "-o",
                                    dir.file(out + ".png"),
                                    "--save-latents",
                                    dir.file(out + ".safetensors")};
  };
  const test::CommandResult both = test::run_sdc(args("10", "2", "both"));
  ASSERT_EQ(both.exit_code, 0) << both.err;
  const test::CommandResult one = test::run_sdc(args("11", "1", "one"));
  ASSERT_EQ(one.exit_code, 0) << one.err;
  const std::vector<float> b =
      io::read_safetensors(dir.file("both.safetensors")).tensors.get("latents").to_f32();
  const std::vector<float> o =
      io::read_safetensors(dir.file("one.safetensors")).tensors.get("latents").to_f32();
  ASSERT_EQ(b.size(), 2 * o.size());
  const std::vector<float> second(b.begin() + long(o.size()), b.end());
  EXPECT_LE(test::rel_max_diff(second.data(), o), 1e-6);
  std::string text;
  for (const auto& [key, value] : io::read_png_text(dir.file("both-2.png")))
    if (key == "parameters") text = value;
  EXPECT_NE(text.find("Sampler: DPM++ 2M SDE, Schedule type: Karras"), std::string::npos) << text;
  EXPECT_NE(text.find("Seed: 11"), std::string::npos) << text;
  EXPECT_NE(text.find("RNG: NV"), std::string::npos) << text;
}

}  // namespace
}  // namespace sdc
