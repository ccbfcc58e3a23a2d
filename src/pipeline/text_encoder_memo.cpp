// TextEncoderMemo: a handful of entries, searched linearly (a lookup is ~8 comparisons of 77
// ids against a 35 ms encoder run).
#include "pipeline/text_encoder_memo.h"

#include <algorithm>

namespace sdc::pipeline {

const std::vector<float>* TextEncoderMemo::find(int clip_skip, const Ids& ids) {
  for (Entry& e : entries_)
    if (e.clip_skip == clip_skip && e.ids == ids) {
      e.used = ++clock_;
      ++hits_;
      return &e.hidden;
    }
  return nullptr;
}

const std::vector<float>& TextEncoderMemo::keep(int clip_skip, const Ids& ids,
                                                std::vector<float>&& hidden) {
  if (capacity_ == 0) return hidden;
  if (entries_.size() >= capacity_) {
    const auto oldest = std::min_element(entries_.begin(), entries_.end(),
                                         [](auto& a, auto& b) { return a.used < b.used; });
    entries_.erase(oldest);
  }
  entries_.push_back({clip_skip, ids, std::move(hidden), ++clock_});
  return entries_.back().hidden;
}

}  // namespace sdc::pipeline
