// TextConditioning: prompt text -> the UNet's context. Parses A1111 syntax, runs the text encoder
// once per 77-token chunk, applies emphasis per chunk and concatenates the chunks, so long prompts
// are never cut. The positive and negative prompts are padded to the same number of chunks.
#pragma once

#include <string>
#include <vector>

#include "backend/cpu/plan.h"
#include "pipeline/text_encoder_memo.h"
#include "text/prompt_parser.h"

namespace sdc::pipeline {

class PlanCache;

struct PromptContext {
  std::vector<float> cond;    // [77·chunks, C]
  std::vector<float> uncond;  // [77·chunks, C] (empty when not needed)
  int tokens = 0;             // 77·chunks
  int channels = 0;
  // Textual-inversion embeddings the prompts used (EmbeddingTriggers::words() indices), the
  // prompt's first, then the negative prompt's.
  std::vector<int> used_embeddings;
};

// Runs the text encoder plan at `clip_skip` (input "input_ids" [1,77] I32, output
// "last_hidden_state" [1,77,C]; compiled only if some chunk is not in `memo`) over each chunk and
// returns [77·chunks, C] with emphasis applied. `memo` (optional) gives and keeps the encoder's
// outputs.
std::vector<float> encode_chunks(PlanCache& plans, int clip_skip, const text::PromptChunks& chunks,
                                 TextEncoderMemo* memo = nullptr);

// Both prompts through the text encoder; `with_uncond` false skips the negative prompt
// (classifier-free guidance off).
// `triggers` (optional): textual-inversion trigger words, whose ids the plans' text encoder
// table has rows for (PlanCache::use_token_embeddings). `memo` (optional): see encode_chunks.
PromptContext encode_prompts(PlanCache& plans, const text::ClipTokenizer& tokenizer,
                             const std::string& prompt, const std::string& negative, int clip_skip,
                             bool with_uncond, const text::EmbeddingTriggers* triggers = nullptr,
                             TextEncoderMemo* memo = nullptr);

// A1111 caps absurd prompts instead of running the encoder for minutes: more chunks than this
// is an error naming the prompt's token count.
inline constexpr int kMaxPromptChunks = 32;

}  // namespace sdc::pipeline
