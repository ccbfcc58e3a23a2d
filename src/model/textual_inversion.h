// Textual-inversion embeddings as AUTOMATIC1111 loads them from its `embeddings/` folder: every
// .pt/.bin/.safetensors file below the folder (recursively) is one embedding whose trigger word
// is the file name without its extension. Formats:
//   - A1111 .pt: {'string_to_param': {'*': Tensor[n, dim]}, 'name', 'step', …} (the restricted
//     unpickler reads it; the stored 'name' is ignored, as A1111 does);
//   - a single-tensor file: kohya's `emb_params` [n, dim] safetensors, diffusers'
//     `learned_embeds.{safetensors,bin}` {token: [n, dim] or [dim]} (a 1-D tensor is 1 vector).
//     A file named learned_embeds (diffusers' fixed name) is triggered by the token stored in it,
//     since its file name says nothing (A1111 would make "learned_embeds" the trigger);
//   - SDXL {'clip_g', 'clip_l'}: recognised and, like any embedding whose width is not the text
//     encoder's, skipped with a warning naming the file.
// A1111's short hash ("TI hashes" in the infotext) is the first 12 hex digits of the file's
// sha256.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "io/tensor_file.h"

namespace sdc::model {

struct Embedding {
  std::string name;  // the trigger word
  std::string file;
  int vectors = 0;            // tokens it takes in the prompt
  int width = 0;              // values per vector (768 for SD1.x; clip_g + clip_l for SDXL)
  std::vector<float> values;  // [vectors, width] row-major, f32
  std::string sha256;         // of the file, hex
  std::string shorthash() const { return sha256.substr(0, 12); }
};

// Most vectors one embedding may take: one prompt chunk holds 75 tokens.
inline constexpr int kMaxEmbeddingVectors = 75;

// Reads one embedding file; sdc::Error naming the file for anything that is not one of the
// formats above (several tensors, a tensor of rank 0 or > 2, no vectors, more than 75 vectors).
Embedding read_embedding(const std::string& path);
// The same from a file already read (its `path` gives the trigger word).
Embedding embedding_from_file(const io::TensorFile& file);

struct EmbeddingLibrary {
  std::vector<Embedding> embeddings;  // by trigger word, case-insensitively sorted (A1111)
  std::vector<std::string> skipped;   // files not used, each with why
  const Embedding* find(const std::string& name) const;
};

// Loads every embedding under `dir` for a text encoder of width `expected_width`. Files that
// cannot be read, or whose width differs, are skipped with a line on `log` naming the file (A1111
// reports and goes on); a trigger word found twice keeps the file that sorts last, with a
// warning. sdc::UsageError (--embeddings) when `dir` is not a folder.
EmbeddingLibrary load_embeddings(const std::string& dir, int expected_width, std::ostream& log);

// The text encoder's token-embedding table [V, width] with every embedding's vectors appended as
// rows V, V + 1, … in library order (the ids EmbeddingTriggers hands out from V), in the table's
// own dtype (so a bf16 model rounds the vectors as it rounds its own rows). sdc::Error for a
// table of another width or a non-float dtype.
TensorRef extend_token_table(const TensorRef& table, const EmbeddingLibrary& library);

}  // namespace sdc::model
