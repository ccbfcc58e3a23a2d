// TextEncoderMemo: the text encoder's outputs for the last few 77-token chunks, by clip skip and
// token ids (before emphasis). A prompt encoded again — the next image of a batch count, a client
// asking again with another seed — skips the encoder, as A1111 keeps its last conditionings. The
// outputs are one model's with one token table: the owner clears the memo when either changes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "text/prompt_parser.h"

namespace sdc::pipeline {

class TextEncoderMemo {
 public:
  using Ids = std::array<int, text::kChunkLength>;
  explicit TextEncoderMemo(size_t capacity = 8) : capacity_(capacity) {}

  // The kept output [77, C] of these ids at this clip skip, or null; a hit counts in hits().
  const std::vector<float>* find(int clip_skip, const Ids& ids);
  // Keeps an output, dropping the least recently used beyond the capacity; returns the kept copy
  // (`hidden` itself with capacity 0, which keeps nothing).
  const std::vector<float>& keep(int clip_skip, const Ids& ids, std::vector<float>&& hidden);
  void clear() { entries_.clear(); }
  size_t size() const { return entries_.size(); }
  int64_t hits() const { return hits_; }

 private:
  struct Entry {
    int clip_skip;
    Ids ids;
    std::vector<float> hidden;
    uint64_t used;
  };
  size_t capacity_;
  std::vector<Entry> entries_;
  uint64_t clock_ = 0;
  int64_t hits_ = 0;
};

}  // namespace sdc::pipeline
