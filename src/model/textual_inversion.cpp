// Textual-inversion files and the embeddings folder, with A1111's rules.
#include "model/textual_inversion.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>

#include "common/error.h"
#include "io/open_file.h"
#include "io/sha256.h"

namespace sdc::model {
namespace fs = std::filesystem;
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_embedding_extension(const fs::path& p) {
  const std::string ext = lower(p.extension().string());
  return ext == ".pt" || ext == ".bin" || ext == ".safetensors";
}

// [n, width] or [width] (1 vector), as A1111 takes vec.shape[0] vectors of vec.shape[-1].
void set_vectors(Embedding& e, const std::string& key, const TensorRef& t) {
  if (t.shape.empty() || t.shape.size() > 2)
    throw Error(e.file, key, "an embedding tensor [vectors, width] or [width]", shape_str(t.shape));
  e.vectors = t.shape.size() == 1 ? 1 : int(t.shape[0]);
  e.width = int(t.shape.back());
  if (e.vectors < 1 || e.width < 1)
    throw Error(e.file, key, "at least one vector of at least one value", shape_str(t.shape));
  if (e.vectors > kMaxEmbeddingVectors)
    throw Error(e.file, key,
                "at most " + std::to_string(kMaxEmbeddingVectors) + " vectors (one prompt chunk)",
                std::to_string(e.vectors));
  e.values = t.to_f32();
}

}  // namespace

Embedding embedding_from_file(const io::TensorFile& file) {
  Embedding e;
  e.file = file.path;
  e.name = fs::path(file.path).stem().string();
  const auto& all = file.tensors.all();
  std::vector<std::string> params = file.tensors.names_with_prefix("string_to_param.");
  if (!params.empty()) {  // A1111 .pt
    if (params.size() != 1)
      throw Error(file.path, "string_to_param", "one term",
                  std::to_string(params.size()) + " terms");
    set_vectors(e, params[0], file.tensors.get(params[0]));
  } else if (file.tensors.contains("clip_g") && file.tensors.contains("clip_l")) {
    // SDXL: two text encoders; its width is the sum, which never matches an SD1.x encoder.
    const TensorRef& g = file.tensors.get("clip_g");
    const TensorRef& l = file.tensors.get("clip_l");
    set_vectors(e, "clip_l", l);
    e.width = int(g.shape.back()) + int(l.shape.back());
  } else if (all.size() == 1) {  // kohya emb_params, diffusers {token: tensor}
    const auto& [key, t] = *all.begin();
    set_vectors(e, key, t);
    if (lower(e.name) == "learned_embeds") e.name = key;
  } else {
    throw Error(file.path, "tensors",
                "one embedding (string_to_param, emb_params or {token: tensor})",
                std::to_string(all.size()) + " tensors");
  }
  e.sha256 = io::sha256_file(file.path);
  return e;
}

Embedding read_embedding(const std::string& path) {
  return embedding_from_file(io::open_tensor_file(path));
}

const Embedding* EmbeddingLibrary::find(const std::string& name) const {
  for (const Embedding& e : embeddings)
    if (e.name == name) return &e;
  return nullptr;
}

EmbeddingLibrary load_embeddings(const std::string& dir, int expected_width, std::ostream& log) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw UsageError(dir, "--embeddings", "a folder of embeddings (.pt, .bin, .safetensors)",
                     fs::exists(dir, ec) ? "not a folder" : "nothing there");
  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(
           dir, fs::directory_options::follow_directory_symlink, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec) && is_embedding_extension(it->path()) && it->file_size(ec) > 0)
      files.push_back(it->path());
  }
  if (ec) throw Error(dir, "--embeddings", "a readable folder", ec.message());
  std::sort(files.begin(), files.end());

  EmbeddingLibrary lib;
  std::map<std::string, Embedding> by_name;
  for (const fs::path& p : files) {
    Embedding e;
    try {
      e = read_embedding(p.string());
    } catch (const Error& err) {
      log << "warning: embedding skipped: " << err.what() << "\n";
      lib.skipped.push_back(std::string(err.what()));
      continue;
    }
    if (e.width != expected_width) {
      const std::string why = e.file + ": width " + std::to_string(e.width) +
                              ", the text encoder's is " + std::to_string(expected_width) +
                              " (an embedding for another model family)";
      log << "warning: embedding skipped: " << why << "\n";
      lib.skipped.push_back(why);
      continue;
    }
    if (auto it = by_name.find(e.name); it != by_name.end())
      log << "warning: embedding '" << e.name << "' is in two files; using " << e.file << ", not "
          << it->second.file << "\n";
    by_name[e.name] = std::move(e);
  }
  for (auto& [name, e] : by_name) lib.embeddings.push_back(std::move(e));
  std::stable_sort(
      lib.embeddings.begin(), lib.embeddings.end(),
      [](const Embedding& a, const Embedding& b) { return lower(a.name) < lower(b.name); });
  return lib;
}

TensorRef extend_token_table(const TensorRef& table, const EmbeddingLibrary& library) {
  if (table.shape.size() != 2 ||
      (table.dtype != DType::F32 && table.dtype != DType::F16 && table.dtype != DType::BF16))
    throw Error(table.source, "token embedding table", "[vocab, width] f32, f16 or bf16",
                shape_str(table.shape) + " " + std::string(dtype_name(table.dtype)));
  const int64_t width = table.shape[1];
  std::vector<float> rows;
  for (const Embedding& e : library.embeddings) {
    if (e.width != width)
      throw Error(e.file, "width", std::to_string(width) + " (the text encoder's)",
                  std::to_string(e.width));
    rows.insert(rows.end(), e.values.begin(), e.values.end());
  }
  const int64_t extra = int64_t(rows.size()) / width;
  const TensorRef appended = TensorRef::from_f32(rows, {extra, width}, table.dtype);
  auto bytes = std::make_shared<std::vector<uint8_t>>(table.nbytes + appended.nbytes);
  std::memcpy(bytes->data(), table.data, table.nbytes);
  if (appended.nbytes) std::memcpy(bytes->data() + table.nbytes, appended.data, appended.nbytes);
  TensorRef out;
  out.dtype = table.dtype;
  out.shape = {table.shape[0] + extra, width};
  out.data = bytes->data();
  out.nbytes = bytes->size();
  out.owner = std::shared_ptr<const void>(bytes, bytes->data());
  out.source = table.source + " + textual-inversion embeddings";
  return out;
}

}  // namespace sdc::model
