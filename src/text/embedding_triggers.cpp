// Trigger-word lookup for textual-inversion embeddings.
#include "text/embedding_triggers.h"

#include <algorithm>

#include "common/error.h"

namespace sdc::text {

EmbeddingTriggers::EmbeddingTriggers(const ClipTokenizer& tokenizer,
                                     const std::vector<Entry>& entries, int first_extra_id)
    : first_extra_id_(first_extra_id) {
  int next_id = first_extra_id;
  for (const Entry& e : entries) {
    TriggerWord w;
    w.name = e.name;
    w.ids = tokenizer.encode(e.name);
    if (w.ids.empty())
      throw Error(e.name, "trigger word", "a name with at least one token", "none");
    if (e.vectors < 1) throw Error(e.name, "vectors", "at least 1", std::to_string(e.vectors));
    w.vectors = e.vectors;
    w.first_id = next_id;
    next_id += e.vectors;
    by_first_token_[w.ids.front()].push_back(int(words_.size()));
    words_.push_back(std::move(w));
  }
  extra_rows_ = next_id - first_extra_id;
  for (auto& [first, list] : by_first_token_)
    std::stable_sort(list.begin(), list.end(), [&](int a, int b) {
      return words_[size_t(a)].ids.size() > words_[size_t(b)].ids.size();
    });
}

int EmbeddingTriggers::match(const std::vector<int>& tokens, size_t pos, size_t& length) const {
  if (pos >= tokens.size()) return -1;
  const auto it = by_first_token_.find(tokens[pos]);
  if (it == by_first_token_.end()) return -1;
  for (int index : it->second) {
    const std::vector<int>& ids = words_[size_t(index)].ids;
    if (pos + ids.size() <= tokens.size() &&
        std::equal(ids.begin(), ids.end(), tokens.begin() + std::ptrdiff_t(pos))) {
      length = ids.size();
      return index;
    }
  }
  return -1;
}

}  // namespace sdc::text
