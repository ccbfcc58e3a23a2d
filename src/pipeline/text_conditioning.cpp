// Chunked text encoding with A1111 emphasis.
#include "pipeline/text_conditioning.h"

#include <algorithm>
#include <cstring>

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

std::vector<float> encode_chunks(cpu::Plan& text_encoder, const PromptChunks& chunks) {
  const Shape& out_shape = text_encoder.output_shape("last_hidden_state");
  const int channels = int(out_shape.back());
  std::vector<float> z(chunks.chunks.size() * kChunkLength * size_t(channels));
  float* dst = z.data();
  for (const PromptChunk& chunk : chunks.chunks) {
    std::copy(chunk.ids.begin(), chunk.ids.end(), text_encoder.input_i32("input_ids"));
    text_encoder.run();
    std::memcpy(dst, text_encoder.output("last_hidden_state"),
                sizeof(float) * kChunkLength * size_t(channels));
    apply_emphasis(dst, kChunkLength, channels, chunk.weights.data());
    dst += kChunkLength * channels;
  }
  return z;
}

PromptContext encode_prompts(PlanCache& plans, const ClipTokenizer& tokenizer,
                             const std::string& prompt, const std::string& negative, int clip_skip,
                             bool with_uncond, const text::EmbeddingTriggers* triggers) {
  PromptOptions options;
  options.max_chunks = kMaxPromptChunks;
  options.embeddings = triggers;
  PromptChunks cond = tokenize_prompt(tokenizer, prompt, options);
  PromptChunks uncond = tokenize_prompt(tokenizer, with_uncond ? negative : "", options);
  if (with_uncond) pad_to_same_length(cond, uncond, tokenizer);
  cpu::Plan& te = plans.text_encoder(1, clip_skip);
  PromptContext ctx;
  ctx.cond = encode_chunks(te, cond);
  if (with_uncond) ctx.uncond = encode_chunks(te, uncond);
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
