// Textual inversion through `sdc generate --embeddings DIR` (fixture
// tiny-sd15/textual_inversion): the conditioning written by --save-conditioning equals the text
// encoder's output of every case (last layer and clip skip 2) for each file format, the infotext
// carries "TI hashes", and a bad folder is refused in one line.
#include <gtest/gtest.h>

#include <algorithm>

#include "common/feature_fixtures.h"
#include "common/fixtures.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "io/sha256.h"
#include "pipeline/generation_params.h"

namespace sdc {
namespace {

const test::FeatureGroup& group() {
  return test::feature_group("textual_inversion");
}

constexpr double kTextTol = 1e-4;  // README: text encoder outputs, fp32

std::vector<float> cond_of(const std::string& embeddings, const std::string& prompt, int clip_skip,
                           const std::string& png = {}) {
  test::TempDir dir;
  const test::CommandResult r =
      test::run_sdc(test::tiny_generate({"--embeddings",
                                         embeddings,
                                         "-p",
                                         prompt,
                                         "-W",
                                         "64",
                                         "-H",
                                         "64",
                                         "--steps",
                                         "1",
                                         "--precision",
                                         "f32",
                                         "--cfg-scale",
                                         "1",
                                         "--clip-skip",
                                         std::to_string(clip_skip),
                                         "--save-conditioning",
                                         dir.file("c.safetensors"),
                                         "-o",
                                         png.empty() ? dir.file("out.png") : png}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  if (r.exit_code != 0) return {};
  const io::TensorFile f = io::read_safetensors(dir.file("c.safetensors"));
  EXPECT_EQ(f.tensors.get("cond").shape, (Shape{1, 77, 32}));
  EXPECT_EQ(f.tensors.find("uncond"), nullptr);  // cfg 1: no negative prompt is encoded
  return f.tensors.get("cond").to_f32();
}

TEST(GenerateTextualInversion, EveryCaseMatchesWithA1111PtFiles) {
  for (const auto& c : group().cases["cases"]) {
    const std::string prompt = c["prompt"];
    const auto& t = c["tensors"];
    std::vector<float> got = cond_of(group().path("a1111-pt"), prompt, 1);
    ASSERT_FALSE(got.empty());
    EXPECT_LE(test::rel_max_diff(got.data(), group().f32(t["last_hidden_state"])), kTextTol)
        << c["id"];
    got = cond_of(group().path("a1111-pt"), prompt, 2);
    ASSERT_FALSE(got.empty());
    EXPECT_LE(test::rel_max_diff(got.data(), group().f32(t["penultimate_ln"])), kTextTol)
        << c["id"];
  }
}

TEST(GenerateTextualInversion, SafetensorsAndDiffusersFormatsMatchToo) {
  const auto& c = group().find_case("textual_inversion/prompt_2");  // both embeddings
  for (const std::string dir : {"safetensors", "diffusers"}) {
    const std::vector<float> got = cond_of(group().path(dir), c["prompt"], 1);
    ASSERT_FALSE(got.empty()) << dir;
    EXPECT_LE(test::rel_max_diff(got.data(), group().f32(c["tensors"]["last_hidden_state"])),
              kTextTol)
        << dir;
  }
}

TEST(GenerateTextualInversion, InfotextHasTiHashes) {
  test::TempDir dir;
  cond_of(group().path("safetensors"), "tiny-style portrait of tiny-cat", 1, dir.file("o.png"));
  std::string text;
  for (const auto& [key, value] : io::read_png_text(dir.file("o.png")))
    if (key == "parameters") text = value;
  const std::string style = io::sha256_file(group().path("safetensors/tiny-style.safetensors"));
  const std::string cat = io::sha256_file(group().path("safetensors/tiny-cat.safetensors"));
  EXPECT_NE(text.find("TI hashes: \"tiny-style: " + style.substr(0, 12) +
                      ", tiny-cat: " + cat.substr(0, 12) + "\""),
            std::string::npos)
      << text;
  const pipeline::GenerationParams p = pipeline::parse_a1111_parameters(text);
  ASSERT_FALSE(p.extra.empty());
  EXPECT_EQ(p.extra.back().first, "TI hashes");
}

TEST(GenerateTextualInversion, WithoutTheFolderTheTriggerIsPlainText) {
  // Same prompt, no --embeddings: the text encoder sees the word's own tokens (a different
  // conditioning), so the embeddings really are what made the match above.
  test::TempDir dir;
  const auto& c = group().find_case("textual_inversion/prompt_0");
  const test::CommandResult r = test::run_sdc(test::tiny_generate(
      {"-p", c["prompt"], "-W", "64", "-H", "64", "--steps", "1", "--cfg-scale", "1", "--precision",
       "f32", "--save-conditioning", dir.file("c.safetensors"), "-o", dir.file("out.png")}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const io::TensorFile f = io::read_safetensors(dir.file("c.safetensors"));
  EXPECT_GT(test::rel_max_diff(f.tensors.get("cond").to_f32().data(),
                               group().f32(c["tensors"]["last_hidden_state"])),
            1e-2);
}

TEST(GenerateTextualInversion, MissingFolderIsRefused) {
  test::TempDir dir;
  const test::CommandResult r = test::run_sdc(
      test::tiny_generate({"--embeddings", dir.file("none"), "-p", "a cat", "-W", "64", "-H", "64",
                           "--steps", "1", "-o", dir.file("out.png")}));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--embeddings: expected a folder of embeddings"), std::string::npos)
      << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(dir.list().empty());
}

TEST(GenerateTextualInversion, WrongWidthIsSkippedWithAWarning) {
  test::TempDir dir;
  WeightMap m;
  m.set("emb_params", TensorRef::from_f32(std::vector<float>(2 * 768, 0.1f), {2, 768}, DType::F32));
  std::filesystem::create_directory(dir.file("emb"));
  io::write_safetensors(dir.file("emb/wide.safetensors"), m);
  const test::CommandResult r =
      test::run_sdc(test::tiny_generate({"--embeddings", dir.file("emb"), "-p", "wide", "-W", "64",
                                         "-H", "64", "--steps", "1", "-o", dir.file("out.png")}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("wide.safetensors: width 768, the text encoder's is 32"), std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace sdc
