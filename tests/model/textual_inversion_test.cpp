// Textual-inversion files (fixture tiny-sd15/textual_inversion): the three formats load to the
// same vectors with A1111's trigger words; the folder loader skips what A1111 skips, saying so.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "common/feature_fixtures.h"
#include "common/fixtures.h"
#include "io/safetensors.h"
#include "io/sha256.h"
#include "model/textual_inversion.h"

namespace sdc::model {
namespace {
namespace fs = std::filesystem;

const test::FeatureGroup& group() {
  return test::feature_group("textual_inversion");
}

void expect_fixture_embedding(const Embedding& e, const std::string& name, int vectors) {
  EXPECT_EQ(e.name, name) << e.file;
  EXPECT_EQ(e.vectors, vectors) << e.file;
  EXPECT_EQ(e.width, 32) << e.file;
  EXPECT_EQ(e.values, group().f32("textual_inversion/embedding/" + name)) << e.file;
  EXPECT_EQ(e.sha256, io::sha256_file(e.file));
  EXPECT_EQ(e.shorthash().size(), 12u);
}

TEST(TextualInversion, ReadsAllThreeFormats) {
  for (const auto& [name, vectors] : {std::pair{"tiny-cat", 1}, {"tiny-style", 3}}) {
    const std::string n = name;
    expect_fixture_embedding(read_embedding(group().path("a1111-pt/" + n + ".pt")), n, vectors);
    expect_fixture_embedding(read_embedding(group().path("safetensors/" + n + ".safetensors")), n,
                             vectors);
    // diffusers' fixed file name: the trigger is the token stored in the file.
    expect_fixture_embedding(
        read_embedding(group().path("diffusers/" + n + "/learned_embeds.safetensors")), n, vectors);
  }
}

TEST(TextualInversion, TriggerIsTheFileNameNotTheStoredName) {
  test::TempDir dir;
  fs::copy_file(group().path("a1111-pt/tiny-cat.pt"), dir.file("my-word.pt"));
  const Embedding e = read_embedding(dir.file("my-word.pt"));
  EXPECT_EQ(e.name, "my-word");  // the .pt says 'tiny-cat' inside; A1111 ignores it
}

TEST(TextualInversion, LibraryLoadsAFolderRecursivelySorted) {
  std::ostringstream log;
  const EmbeddingLibrary lib = load_embeddings(group().dir + "/diffusers", 32, log);
  ASSERT_EQ(lib.embeddings.size(), 2u);
  EXPECT_EQ(lib.embeddings[0].name, "tiny-cat");
  EXPECT_EQ(lib.embeddings[1].name, "tiny-style");
  EXPECT_EQ(log.str(), "");
  ASSERT_NE(lib.find("tiny-style"), nullptr);
  EXPECT_EQ(lib.find("nope"), nullptr);
}

TEST(TextualInversion, WrongWidthIsSkippedWithAWarningNamingTheFile) {
  std::ostringstream log;
  const EmbeddingLibrary lib = load_embeddings(group().dir + "/a1111-pt", 768, log);
  EXPECT_TRUE(lib.embeddings.empty());
  EXPECT_EQ(lib.skipped.size(), 2u);
  EXPECT_NE(log.str().find("tiny-cat.pt: width 32, the text encoder's is 768"), std::string::npos)
      << log.str();
}

TEST(TextualInversion, SdxlEmbeddingIsRecognisedAndSkipped) {
  test::TempDir dir;
  WeightMap m;
  m.set("clip_g", TensorRef::from_f32(std::vector<float>(2 * 1280, 0.5f), {2, 1280}, DType::F16));
  m.set("clip_l", TensorRef::from_f32(std::vector<float>(2 * 768, 0.5f), {2, 768}, DType::F16));
  io::write_safetensors(dir.file("xl.safetensors"), m);
  const Embedding e = read_embedding(dir.file("xl.safetensors"));
  EXPECT_EQ(e.width, 2048);
  std::ostringstream log;
  EXPECT_TRUE(load_embeddings(dir.path(), 768, log).embeddings.empty());
  EXPECT_NE(log.str().find("xl.safetensors: width 2048"), std::string::npos) << log.str();
}

TEST(TextualInversion, BadFilesAreSkippedOthersKept) {
  test::TempDir dir;
  fs::copy_file(group().path("safetensors/tiny-cat.safetensors"), dir.file("good.safetensors"));
  std::ofstream(dir.file("broken.pt")) << "not a checkpoint";
  WeightMap two;
  two.set("a", TensorRef::from_f32({1, 2}, {2}, DType::F32));
  two.set("b", TensorRef::from_f32({1, 2}, {2}, DType::F32));
  io::write_safetensors(dir.file("two.safetensors"), two);
  std::ofstream(dir.file("notes.txt")) << "ignored: not an embedding extension";
  std::ofstream(dir.file("empty.pt"));  // empty files are ignored, as A1111 does
  std::ostringstream log;
  const EmbeddingLibrary lib = load_embeddings(dir.path(), 32, log);
  ASSERT_EQ(lib.embeddings.size(), 1u);
  EXPECT_EQ(lib.embeddings[0].name, "good");
  EXPECT_EQ(lib.skipped.size(), 2u);
  EXPECT_NE(log.str().find("broken.pt"), std::string::npos) << log.str();
  EXPECT_NE(log.str().find("two.safetensors: tensors: expected one embedding"), std::string::npos)
      << log.str();
}

TEST(TextualInversion, MissingFolderIsAUsageError) {
  std::ostringstream log;
  try {
    load_embeddings("/nonexistent/embeddings", 768, log);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(),
                 "/nonexistent/embeddings: --embeddings: expected a folder of embeddings (.pt, "
                 ".bin, .safetensors), found nothing there");
  }
}

TEST(TextualInversion, TooManyVectorsRefused) {
  test::TempDir dir;
  WeightMap m;
  m.set("emb_params", TensorRef::from_f32(std::vector<float>(76 * 4, 0.f), {76, 4}, DType::F32));
  io::write_safetensors(dir.file("long.safetensors"), m);
  EXPECT_THROW(read_embedding(dir.file("long.safetensors")), Error);
}

}  // namespace
}  // namespace sdc::model
