// ClipTokenizer: the CLIP byte-level BPE tokenizer of SD1.5's text encoder, giving the same ids
// as transformers' slow CLIPTokenizer with ftfy installed (= openai/CLIP's simple_tokenizer):
// split out the literal special tokens, clean the text (text_normalizer.h), pre-tokenize with
// CLIP's pattern, map bytes to printable characters, apply BPE with "</w>" on each word's last
// symbol, look the pieces up in the vocabulary.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sdc::text {

class ClipTokenizer {
 public:
  // The text of vocab.json ({"token": id, ...}) and merges.txt ("#version" line, then one
  // "left right" merge per line, in priority order). `source` names them in error messages.
  ClipTokenizer(std::string_view vocab_json, std::string_view merges_txt,
                std::string source = "tokenizer");

  // The tokenizer of openai/CLIP (SD1.5's), from the files embedded in the binary.
  static const ClipTokenizer& builtin();

  // Content token ids of `text` (UTF-8), without BOS/EOS, never truncated. Invalid UTF-8 throws
  // sdc::Error.
  std::vector<int> encode(std::string_view text) const;

  // `tokenizer(text, padding='max_length', max_length=max_len, truncation=True)["input_ids"]`:
  // BOS, at most max_len-2 content tokens, EOS, then EOS up to max_len.
  std::vector<int> encode_padded(std::string_view text, int max_len = 77) const;

  // The BPE token strings of encode(text) (e.g. "photo</w>"), for tests and diagnostics.
  std::vector<std::string> tokens(std::string_view text) const;

  int bos_id() const { return bos_id_; }
  int eos_id() const { return eos_id_; }
  // The id of ",</w>" (A1111's chunking backtracks to commas), or -1 if the vocabulary lacks it.
  int comma_id() const { return comma_id_; }
  int vocab_size() const { return static_cast<int>(token_start_.size()) - 1; }
  // The vocabulary string of `id`; throws sdc::Error when out of range.
  std::string_view token(int id) const;

  ClipTokenizer(const ClipTokenizer&) = delete;
  ClipTokenizer& operator=(const ClipTokenizer&) = delete;

 private:
  struct Merge {
    std::uint64_t pair;  // pair_key(left, right)
    int rank;            // position in merges.txt: lower merges first
    int result;          // id of left+right
  };
  static std::uint64_t pair_key(int left, int right) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) |
           static_cast<std::uint32_t>(right);
  }

  void encode_piece(std::u32string_view piece,
                    std::vector<int>& out) const;                // one non-special piece
  void bpe(std::string_view word, std::vector<int>& out) const;  // one pre-token (UTF-8)

  std::string_view text_of(int id) const;  // token(id) unchecked
  // The id of `token`, or -1.
  int find_token(std::string_view token) const;
  // The merge of the pair (left, right), or null.
  const Merge* find_merge(int left, int right) const;

  std::string source_;
  // Built at every start (~49k tokens and merges), so without a node or a string per entry: the
  // tokens' text end to end in one string, and open-addressing tables of indices into it and
  // into merges_ (std::unordered_maps of them took 25-30 ms, 60-95 ms in a fresh process).
  std::string token_text_;                  // every token's UTF-8, end to end
  std::vector<std::uint32_t> token_start_;  // [vocab_size + 1]: token id's text starts here
  std::vector<std::int32_t> token_slots_;   // open addressing: token ids, -1 empty
  std::vector<Merge> merges_;
  std::vector<std::int32_t> merge_slots_;  // open addressing: indices into merges_, -1 empty
  int byte_id_[256];                       // id of the printable character standing for each byte
  int byte_end_id_[256];                   // the same followed by "</w>"
  int bos_id_ = -1, eos_id_ = -1, comma_id_ = -1;

  // BPE results per word. Bounded: cleared when it grows past kMaxCacheEntries.
  static constexpr size_t kMaxCacheEntries = 1 << 16;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int>> cache_;
};

}  // namespace sdc::text
