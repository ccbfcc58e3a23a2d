// Diffusers folder reader: finds each component's config and weight file(s), reads them with the
// safetensors or ckpt reader and prefixes the names with the component folder.
#include "io/diffusers_folder.h"

#include <filesystem>
#include <fstream>
#include <set>

#include "common/error.h"
#include "io/ckpt.h"
#include "io/safetensors.h"

namespace sdc::io {

namespace fs = std::filesystem;

namespace {

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  if (!in) throw Error(p.string(), "", "a readable JSON file", "cannot open it");
  try {
    nlohmann::json j = nlohmann::json::parse(in);
    if (!j.is_object()) throw Error(p.string(), "", "a JSON object", j.type_name());
    return j;
  } catch (const nlohmann::json::exception& e) {
    throw Error(p.string(), "", "valid JSON", std::string("invalid JSON (") + e.what() + ")");
  }
}

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// Weight files in the order diffusers itself prefers them (safetensors before pickles, full
// precision before the fp16 variant).
const std::vector<std::string>& single_weight_files() {
  static const std::vector<std::string> names{
      "diffusion_pytorch_model.safetensors",
      "model.safetensors",
      "diffusion_pytorch_model.fp16.safetensors",
      "model.fp16.safetensors",
  };
  return names;
}
const std::vector<std::string>& sharded_indexes() {
  static const std::vector<std::string> names{
      "diffusion_pytorch_model.safetensors.index.json",
      "model.safetensors.index.json",
      "diffusion_pytorch_model.safetensors.index.fp16.json",
      "model.safetensors.index.fp16.json",
  };
  return names;
}
const std::vector<std::string>& pickle_weight_files() {
  static const std::vector<std::string> names{
      "diffusion_pytorch_model.bin",
      "pytorch_model.bin",
      "diffusion_pytorch_model.fp16.bin",
      "pytorch_model.fp16.bin",
  };
  return names;
}

TensorFile read_weight_file(const fs::path& p) {
  const std::string ext = p.extension().string();
  if (ext == ".bin") {
    return read_ckpt(p.string());
  }
  return read_safetensors(p.string());
}

// Reads a sharded checkpoint: the index maps every tensor name to the shard holding it.
void read_sharded(const fs::path& index_path, TensorFile& into, const std::string& prefix,
                  nlohmann::json& weight_list) {
  const nlohmann::json index = read_json(index_path);
  auto wm = index.find("weight_map");
  if (wm == index.end() || !wm->is_object())
    throw Error(index_path.string(), "weight_map", "an object {tensor name: shard file}",
                wm == index.end() ? "none" : wm->type_name());
  std::map<std::string, std::vector<std::string>> by_shard;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it.value().is_string())
      throw Error(index_path.string(), "weight_map." + it.key(), "a shard file name",
                  it.value().type_name());
    const std::string shard = it.value().get<std::string>();
    // Shards live beside the index: a path that leaves the folder is not a shard name.
    if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..")
      throw Error(index_path.string(), "weight_map." + it.key(), "a file name in the same folder",
                  shard);
    by_shard[shard].push_back(it.key());
  }
  for (const auto& [shard, names] : by_shard) {
    const fs::path sp = index_path.parent_path() / shard;
    TensorFile part = read_weight_file(sp);
    into.file_size += part.file_size;
    weight_list.push_back(sp.string());
    for (const auto& name : names) {
      const TensorRef* t = part.tensors.find(name);
      if (!t)
        throw Error(sp.string(), name, "the tensor listed in " + index_path.filename().string(),
                    "none");
      into.tensors.set(prefix + name, *t);
    }
  }
}

// Reads one component folder's config and weights into `into`, names prefixed by `name + "."`.
void read_component(const fs::path& folder, const std::string& name, TensorFile& into) {
  nlohmann::json entry;
  entry["folder"] = folder.filename().string();
  const fs::path config = folder / "config.json";
  if (!is_file(config))
    throw Error(folder.string(), "config.json", "the component's config.json", "none");
  entry["config"] = read_json(config);
  entry["weights"] = nlohmann::json::array();
  const std::string prefix = name + ".";

  for (const auto& f : single_weight_files()) {
    if (!is_file(folder / f)) continue;
    TensorFile part = read_weight_file(folder / f);
    into.file_size += part.file_size;
    entry["weights"].push_back((folder / f).string());
    for (auto& [n, t] : part.tensors.all()) into.tensors.set(prefix + n, t);
    into.metadata["components"][name] = entry;
    return;
  }
  for (const auto& f : sharded_indexes()) {
    if (!is_file(folder / f)) continue;
    read_sharded(folder / f, into, prefix, entry["weights"]);
    into.metadata["components"][name] = entry;
    return;
  }
  for (const auto& f : pickle_weight_files()) {
    if (!is_file(folder / f)) continue;
    TensorFile part = read_weight_file(folder / f);
    into.file_size += part.file_size;
    entry["weights"].push_back((folder / f).string());
    for (auto& [n, t] : part.tensors.all()) into.tensors.set(prefix + n, t);
    into.metadata["components"][name] = entry;
    return;
  }
  throw Error(folder.string(), "weights",
              "diffusion_pytorch_model.safetensors, model.safetensors, a *.fp16.safetensors, a "
              "sharded *.safetensors.index.json or a PyTorch .bin",
              "none of them");
}

// The component a single-component folder holds, from its config.json.
std::string component_of_config(const fs::path& config_path, const nlohmann::json& config) {
  std::string cls;
  if (auto c = config.find("_class_name"); c != config.end() && c->is_string())
    cls = c->get<std::string>();
  else if (auto a = config.find("architectures");
           a != config.end() && a->is_array() && !a->empty() && (*a)[0].is_string())
    cls = (*a)[0].get<std::string>();
  static const std::map<std::string, std::string> kinds{
      {"UNet2DConditionModel", "unet"},
      {"AutoencoderKL", "vae"},
      {"ControlNetModel", "controlnet"},
      {"CLIPTextModel", "text_encoder"},
      {"CLIPTextModelWithProjection", "text_encoder"},
  };
  auto it = kinds.find(cls);
  if (it == kinds.end())
    throw Error(config_path.string(), "_class_name",
                "UNet2DConditionModel, AutoencoderKL, ControlNetModel or CLIPTextModel",
                cls.empty() ? "no class name" : cls);
  return it->second;
}

}  // namespace

const std::vector<std::string>& diffusers_component_folders() {
  static const std::vector<std::string> names{"unet", "vae", "text_encoder", "text_encoder_2",
                                              "controlnet"};
  return names;
}

bool looks_like_diffusers_folder(const std::string& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) &&
         (is_file(fs::path(dir) / "model_index.json") || is_file(fs::path(dir) / "config.json"));
}

TensorFile read_diffusers_folder(const std::string& dir) {
  const fs::path root(dir);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw Error(dir, "", "a diffusers folder", "not a directory");
  TensorFile tf;
  tf.path = dir;
  tf.format = FileFormat::Diffusers;
  tf.file_size = 0;
  tf.metadata = nlohmann::json::object();
  tf.metadata["components"] = nlohmann::json::object();
  tf.tensors.description = dir;

  const fs::path index_path = root / "model_index.json";
  if (is_file(index_path)) {
    const nlohmann::json index = read_json(index_path);
    tf.metadata["model_index"] = index;
    for (const auto& name : diffusers_component_folders()) {
      auto it = index.find(name);
      // model_index lists absent components as [null, null].
      if (it == index.end() || !it->is_array() || it->empty() || (*it)[0].is_null()) continue;
      const fs::path folder = root / name;
      if (!fs::is_directory(folder, ec))
        throw Error(dir, name, "the folder " + name + "/ that model_index.json lists", "none");
      read_component(folder, name, tf);
    }
    if (tf.metadata["components"].empty())
      throw Error(index_path.string(), "", "at least one of unet, vae, text_encoder, controlnet",
                  "none listed");
  } else if (is_file(root / "config.json")) {
    const nlohmann::json config = read_json(root / "config.json");
    read_component(root, component_of_config(root / "config.json", config), tf);
  } else {
    throw Error(dir, "", "a diffusers folder (model_index.json, or config.json of one component)",
                "a directory with neither");
  }
  if (fs::is_directory(root / "tokenizer", ec))
    tf.metadata["tokenizer"] = (root / "tokenizer").string();
  return tf;
}

}  // namespace sdc::io
