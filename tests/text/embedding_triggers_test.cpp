// Trigger words in prompts (fixture tiny-sd15/textual_inversion): token ids of both styles
// (A1111's id-0 placeholders, diffusers' added tokens) and the spans' positions.
#include <gtest/gtest.h>

#include "common/feature_fixtures.h"
#include "text/embedding_triggers.h"
#include "text/prompt_parser.h"

namespace sdc::text {
namespace {

const test::FeatureGroup& group() {
  return test::feature_group("textual_inversion");
}

std::vector<int> ids_of(const std::string& tensor) {
  std::vector<int> out;
  const TensorRef& t = group().reference.tensors.get(tensor);
  const auto* p = static_cast<const int64_t*>(t.data);
  for (int64_t i = 0; i < t.numel(); ++i) out.push_back(int(p[i]));
  return out;
}

EmbeddingTriggers fixture_triggers() {
  // diffusers adds tokens in load order: tiny-cat 49408, tiny-style 49409..49411.
  return EmbeddingTriggers(ClipTokenizer::builtin(), {{"tiny-cat", 1}, {"tiny-style", 3}}, 49408);
}

TEST(EmbeddingTriggers, PromptIdsMatchBothStyles) {
  const EmbeddingTriggers triggers = fixture_triggers();
  EXPECT_EQ(triggers.extra_rows(), 4);
  PromptOptions options;
  options.embeddings = &triggers;
  int checked = 0;
  for (const auto& c : group().cases["cases"]) {
    const PromptChunks chunks =
        tokenize_prompt(ClipTokenizer::builtin(), c["prompt"].get<std::string>(), options);
    ASSERT_EQ(chunks.chunks.size(), 1u);
    const std::vector<int> got(chunks.chunks[0].ids.begin(), chunks.chunks[0].ids.end());
    EXPECT_EQ(got, ids_of(c["tensors"]["input_ids_diffusers"])) << c["id"];
    std::vector<int> a1111 = got;
    for (int& id : a1111)
      if (id >= 49408) id = 0;
    EXPECT_EQ(a1111, ids_of(c["tensors"]["input_ids_a1111"])) << c["id"];
    for (const auto& span : c["a1111"]["spans"]) {
      const int pos = span["first_position"].get<int>();
      const auto& w = triggers.words()[span["name"] == "tiny-cat" ? 0 : 1];
      EXPECT_EQ(w.ids, span["name_token_ids"].get<std::vector<int>>());
      for (int k = 0; k < span["vectors"].get<int>(); ++k)
        EXPECT_EQ(got[size_t(pos + k)], w.first_id + k) << c["id"];
    }
    EXPECT_EQ(chunks.used_embeddings.size(), c["embeddings_used"].size()) << c["id"];
    ++checked;
  }
  EXPECT_EQ(checked, 3);
}

TEST(EmbeddingTriggers, CaseInsensitiveWeightedAndLongestFirst) {
  const EmbeddingTriggers triggers(ClipTokenizer::builtin(), {{"tiny", 1}, {"tiny-style", 3}},
                                   1000);
  PromptOptions options;
  options.embeddings = &triggers;
  const PromptChunks c =
      tokenize_prompt(ClipTokenizer::builtin(), "(TINY-Style:1.5) tiny", options);
  const PromptChunk& k = c.chunks[0];
  EXPECT_EQ(k.ids[1], 1001);
  EXPECT_EQ(k.ids[2], 1002);
  EXPECT_EQ(k.ids[3], 1003);
  EXPECT_FLOAT_EQ(k.weights[1], 1.5f);
  EXPECT_FLOAT_EQ(k.weights[3], 1.5f);
  EXPECT_EQ(k.ids[4], 1000);
  EXPECT_FLOAT_EQ(k.weights[4], 1.0f);
  EXPECT_EQ(c.tokens, 4);
  EXPECT_EQ(c.used_embeddings, (std::vector<int>{1, 0}));
}

TEST(EmbeddingTriggers, VectorsThatDoNotFitStartANewChunk) {
  const EmbeddingTriggers triggers(ClipTokenizer::builtin(), {{"tiny-style", 3}}, 1000);
  PromptOptions options;
  options.embeddings = &triggers;
  options.comma_backtrack = 0;
  std::string prompt;
  for (int i = 0; i < 73; ++i) prompt += "cat ";
  prompt += "tiny-style";
  const PromptChunks c = tokenize_prompt(ClipTokenizer::builtin(), prompt, options);
  ASSERT_EQ(c.chunks.size(), 2u);
  EXPECT_EQ(c.chunks[0].ids[74], c.chunks[0].ids[0] + 1);  // 73 cats then EOS padding
  EXPECT_EQ(c.chunks[1].ids[1], 1000);
  EXPECT_EQ(c.chunks[1].ids[3], 1002);
}

TEST(EmbeddingTriggers, WithoutTriggersTheTextIsPlain) {
  const PromptChunks c = tokenize_prompt(ClipTokenizer::builtin(), "tiny-cat");
  EXPECT_EQ(c.tokens, 3);
  EXPECT_TRUE(c.used_embeddings.empty());
}

}  // namespace
}  // namespace sdc::text
