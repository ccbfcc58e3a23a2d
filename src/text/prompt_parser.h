// Prompt syntax as AUTOMATIC1111's web UI reads it, and its chunking into CLIP's 77-token windows:
//   (text) ×1.1, [text] ÷1.1, (text:1.3) explicit weight, nesting multiplies, \( \) \[ \] \\ are
//   literal, unbalanced brackets weigh whatever follows them to the end, "BREAK" starts a chunk.
// parse_prompt_attention mirrors A1111's modules/prompt_parser.parse_prompt_attention (including
// its quirks: equal-weight neighbours merge, a BREAK inside brackets is plain text), and
// tokenize_prompt mirrors FrozenCLIPEmbedderWithCustomWordsBase.tokenize_line: 75 tokens per
// chunk, comma backtracking, nothing truncated, textual-inversion trigger words replaced by their
// vectors' positions (embedding_triggers.h). Not handled here: prompt editing [a:b:when],
// alternation [a|b], AND, <lora:...> (earlier stages).
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "text/embedding_triggers.h"
#include "text/tokenizer.h"

namespace sdc::text {

// One run of prompt text and its attention weight. A chunk break is A1111's ("BREAK", -1).
struct PromptPiece {
  std::string text;
  double weight = 1.0;
  bool is_break() const { return weight == -1.0 && text == "BREAK"; }
  bool operator==(const PromptPiece&) const = default;
};

// A1111's parse_prompt_attention. Invalid UTF-8, or an explicit weight that Python's float()
// rejects (such as "(a:1.2.3)"), throws sdc::Error.
std::vector<PromptPiece> parse_prompt_attention(std::string_view prompt);

inline constexpr int kChunkTokens = 75;                // content tokens per chunk
inline constexpr int kChunkLength = kChunkTokens + 2;  // with start and end tokens

// One text-encoder window: BOS, 75 tokens (padded with EOS), EOS; weight 1 at BOS/EOS/padding.
struct PromptChunk {
  std::array<int, kChunkLength> ids{};
  std::array<float, kChunkLength> weights{};
};

struct PromptChunks {
  std::vector<PromptChunk> chunks;   // never empty
  int tokens = 0;                    // content tokens over all chunks (no BOS/EOS/padding)
  std::vector<int> used_embeddings;  // indices into EmbeddingTriggers::words(), first use first

  std::vector<int> flat_ids() const;        // chunks × 77 ids, chunk after chunk
  std::vector<float> flat_weights() const;  // chunks × 77 weights
};

struct PromptOptions {
  bool emphasis = true;  // false: the prompt is plain text at weight 1 (A1111's emphasis "None")
  int comma_backtrack = 20;  // A1111's comma_padding_backtrack; 0 switches it off
  int max_chunks = 0;        // 0: no limit; else more chunks than this throw sdc::Error
  const EmbeddingTriggers* embeddings = nullptr;  // textual-inversion triggers, if any
};

// A1111's tokenize_line: parse, tokenize each piece, fill 75-token chunks; BREAK forces a new
// chunk; when a chunk is full and a comma came within the last `comma_backtrack` tokens, the
// chunk ends after that comma and the tokens after it move on. A trigger word (matched within one
// weighted fragment) becomes its n vectors' ids at the fragment's weight, starting a new chunk
// when they would not fit in this one. An empty prompt gives one chunk.
PromptChunks tokenize_prompt(const ClipTokenizer& tokenizer, std::string_view prompt,
                             const PromptOptions& options = {});

// The chunk of the empty prompt: BOS, EOS × 76, all weights 1.
PromptChunk empty_chunk(const ClipTokenizer& tokenizer);

// Appends empty chunks to the shorter list so that both have as many chunks (what A1111 does
// with "pad prompt/negative prompt to be same length"), so that cond and uncond contexts have
// the same shape [N, 77·chunks, C].
void pad_to_same_length(PromptChunks& a, PromptChunks& b, const ClipTokenizer& tokenizer);

}  // namespace sdc::text
