// TextEncoderMemo: kept outputs by clip skip and ids, least recently used first out; and the
// pipeline's use of it: a prompt generated again skips the encoder with the same conditioning and
// image, and new embeddings clear it.
#include <gtest/gtest.h>

#include "model/textual_inversion.h"
#include "pipeline/stable_diffusion.h"
#include "pipeline/text_encoder_memo.h"
#include "pipeline/tiny_bundle.h"

namespace sdc::pipeline {
namespace {

TextEncoderMemo::Ids ids_of(int first) {
  TextEncoderMemo::Ids ids{};
  ids[0] = 49406;
  ids[1] = first;
  return ids;
}

TEST(TextEncoderMemo, FindsByClipSkipAndIdsAndDropsTheLeastRecentlyUsed) {
  TextEncoderMemo memo(2);
  EXPECT_EQ(memo.find(1, ids_of(10)), nullptr);
  memo.keep(1, ids_of(10), {1.f, 2.f});
  memo.keep(1, ids_of(11), {3.f});
  ASSERT_NE(memo.find(1, ids_of(10)), nullptr);
  EXPECT_EQ(*memo.find(1, ids_of(10)), (std::vector<float>{1.f, 2.f}));
  EXPECT_EQ(memo.find(2, ids_of(10)), nullptr) << "another clip skip is another output";
  EXPECT_EQ(memo.hits(), 2);
  memo.keep(1, ids_of(12), {4.f});  // 11 was used least recently
  EXPECT_EQ(memo.size(), 2u);
  EXPECT_EQ(memo.find(1, ids_of(11)), nullptr);
  EXPECT_NE(memo.find(1, ids_of(10)), nullptr);
  EXPECT_NE(memo.find(1, ids_of(12)), nullptr);
  memo.clear();
  EXPECT_EQ(memo.size(), 0u);
  EXPECT_EQ(memo.find(1, ids_of(10)), nullptr);
  TextEncoderMemo none(0);
  std::vector<float> out = {1.f};
  EXPECT_EQ(&none.keep(1, ids_of(10), std::move(out)), &out) << "kept nowhere: the caller's own";
  EXPECT_EQ(none.size(), 0u);
}

TEST(TextEncoderMemo, APromptGeneratedAgainSkipsTheEncoder) {
  const ModelBundle& bundle = test::tiny_bundle();
  StableDiffusion sd{bundle.model, {}, bundle.tokenizer(), bundle.name};
  GenerationRequest r;
  r.prompt = "a red cube";
  r.negative_prompt = "blurry";
  r.width = r.height = 64;
  r.steps = 2;
  r.cfg_scale = 5;
  r.seed = 7;
  const BatchResult first = sd.generate_batch(r, 7);
  EXPECT_EQ(sd.text_encoder_memo().hits(), 0);
  EXPECT_EQ(sd.text_encoder_memo().size(), 2u);  // the prompt's chunk and the negative one's
  const BatchResult again = sd.generate_batch(r, 8);
  EXPECT_EQ(sd.text_encoder_memo().hits(), 2);
  EXPECT_EQ(again.cond, first.cond);
  EXPECT_EQ(again.uncond, first.uncond);
  // Same seed: the same image as a fresh pipeline's.
  const BatchResult same_seed = sd.generate_batch(r, 7);
  StableDiffusion fresh{bundle.model, {}, bundle.tokenizer(), bundle.name};
  const BatchResult reference = fresh.generate_batch(r, 7);
  ASSERT_EQ(same_seed.images.size(), 1u);
  EXPECT_EQ(same_seed.images[0].image.rgb, reference.images[0].image.rgb);
  // Emphasis is applied after the memo: the same ids at another weight are not the same context.
  GenerationRequest emphasised = r;
  emphasised.prompt = "(a red cube:1.3)";
  const BatchResult weighted = sd.generate_batch(emphasised, 7);
  EXPECT_EQ(sd.text_encoder_memo().hits(), 6);
  EXPECT_NE(weighted.cond, first.cond);
  sd.use_embeddings(model::EmbeddingLibrary{});
  EXPECT_EQ(sd.text_encoder_memo().size(), 0u) << "a trigger's ids may have other vectors now";
}

}  // namespace
}  // namespace sdc::pipeline
