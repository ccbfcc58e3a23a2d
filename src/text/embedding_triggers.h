// Trigger words of textual-inversion embeddings, matched in prompts as AUTOMATIC1111 does: each
// trigger is tokenized like prompt text (so matching is on token ids, case-insensitive), and at
// every position of a prompt fragment's ids the longest trigger that starts there wins
// (EmbeddingDatabase.find_embedding_at_position). An embedding of n vectors takes n prompt
// positions; they get the ids first_id … first_id + n − 1, past the CLIP vocabulary, which the
// text encoder's token-embedding table is extended with (A1111 writes id 0 there and overwrites
// the rows afterwards: the embeddings fed to the transformer are the same).
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "text/tokenizer.h"

namespace sdc::text {

struct TriggerWord {
  std::string name;
  std::vector<int> ids;  // the trigger's own CLIP tokens
  int vectors = 0;       // prompt positions it takes
  int first_id = 0;      // id of its first vector in the extended table
};

class EmbeddingTriggers {
 public:
  struct Entry {
    std::string name;
    int vectors = 0;
  };
  // `first_extra_id`: the first id past the text encoder's vocabulary (its table's row count).
  // Entries are numbered consecutively in the order given. sdc::Error for a trigger that
  // tokenizes to nothing or an entry without vectors.
  EmbeddingTriggers(const ClipTokenizer& tokenizer, const std::vector<Entry>& entries,
                    int first_extra_id);

  const std::vector<TriggerWord>& words() const { return words_; }
  int first_extra_id() const { return first_extra_id_; }
  int extra_rows() const { return extra_rows_; }  // vectors over all triggers

  // The trigger starting at tokens[pos] (longest first), or -1; `length` gets its token count.
  int match(const std::vector<int>& tokens, size_t pos, size_t& length) const;

 private:
  std::vector<TriggerWord> words_;
  std::map<int, std::vector<int>> by_first_token_;  // first token -> word indices, longest first
  int first_extra_id_ = 0, extra_rows_ = 0;
};

}  // namespace sdc::text
