// Chunked text encoding with A1111 emphasis.
#include "pipeline/text_conditioning.h"

#include <algorithm>

#include "common/error.h"
#include "pipeline/plan_cache.h"
#include "text/prompt_embedding.h"

namespace sdc::pipeline {
using text::apply_emphasis;
using text::ClipTokenizer;
using text::kChunkLength;
using text::pad_to_same_length;
using text::PromptChunk;
using text::PromptChunks;
using text::PromptOptions;

std::vector<float> encode_chunks(PlanCache& plans, int clip_skip, const PromptChunks& chunks,
                                 TextEncoderMemo* memo) {
  std::vector<float> z;
  for (const PromptChunk& chunk : chunks.chunks) {
    const std::vector<float>* kept = memo ? memo->find(clip_skip, chunk.ids) : nullptr;
    std::vector<float> hidden;
    if (!kept) {
      cpu::Plan& text_encoder = plans.text_encoder(1, clip_skip);
      std::copy(chunk.ids.begin(), chunk.ids.end(), text_encoder.input_i32("input_ids"));
      text_encoder.run();
      const float* out = text_encoder.output("last_hidden_state");
      hidden.assign(out, out + shape_numel(text_encoder.output_shape("last_hidden_state")));
      kept = memo ? &memo->keep(clip_skip, chunk.ids, std::move(hidden)) : &hidden;
    }
    const int channels = int(kept->size() / kChunkLength);
    const size_t at = z.size();
    z.insert(z.end(), kept->begin(), kept->end());
    apply_emphasis(z.data() + at, kChunkLength, channels, chunk.weights.data());
  }
  return z;
}

PromptContext encode_prompts(PlanCache& plans, const ClipTokenizer& tokenizer,
                             const std::string& prompt, const std::string& negative, int clip_skip,
                             bool with_uncond, const text::EmbeddingTriggers* triggers,
                             TextEncoderMemo* memo) {
  PromptOptions options;
  options.max_chunks = kMaxPromptChunks;
  options.embeddings = triggers;
  PromptChunks cond = tokenize_prompt(tokenizer, prompt, options);
  PromptChunks uncond = tokenize_prompt(tokenizer, with_uncond ? negative : "", options);
  if (with_uncond) pad_to_same_length(cond, uncond, tokenizer);
  PromptContext ctx;
  ctx.cond = encode_chunks(plans, clip_skip, cond, memo);
  if (with_uncond) ctx.uncond = encode_chunks(plans, clip_skip, uncond, memo);
  ctx.tokens = int(cond.chunks.size()) * kChunkLength;
  ctx.channels = int(ctx.cond.size() / size_t(ctx.tokens));
  ctx.used_embeddings = cond.used_embeddings;
  for (int e : uncond.used_embeddings)
    if (std::find(ctx.used_embeddings.begin(), ctx.used_embeddings.end(), e) ==
        ctx.used_embeddings.end())
      ctx.used_embeddings.push_back(e);
  return ctx;
}

}  // namespace sdc::pipeline
