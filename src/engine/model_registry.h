// ModelRegistry: what models, LoRAs and ControlNets can be served — found by scanning the
// configured folders (--models-dir, --lora-dir, --controlnet-dir) and named the way A1111 names
// them, so that clients that store a model's "title" keep working. It owns the sha256 of each
// file (computed at most once per file version and kept in a cache file, see HashCache) and the
// rule that a request's name can never reach outside those folders.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/hash_cache.h"

namespace sdc::engine {

enum class ModelKind { Safetensors, Ckpt, Gguf, Diffusers };
const char* kind_name(ModelKind k);  // "safetensors", "ckpt", "gguf", "diffusers"

// One checkpoint, diffusers folder or compiled .gguf.
struct ModelInfo {
  // Path relative to the models folder with '/' separators, e.g. "sub/foo.safetensors" or, for a
  // diffusers folder, "sub/foo" (A1111's CheckpointInfo.name). The registry's primary key.
  std::string name;
  std::string model_name;  // `name` without extension, '/' replaced by '_' (A1111 model_name)
  std::string stem;        // file (or folder) name without extension: the infotext "Model:"
  std::string path;        // absolute path on disk
  ModelKind kind = ModelKind::Safetensors;
  uint64_t size_bytes = 0;    // the file's size; 0 for a diffusers folder
  int64_t modified_unix = 0;  // the file's (folder's) modification time, seconds since 1970
  std::string sha256;         // 64 hex digits; empty until computed (see ModelRegistry::hash)
  std::string model_config;   // --model-config DIR that applies to it (empty: none)

  std::string short_hash() const;  // sha256[:10], empty while unhashed (A1111 "shorthash")
  std::string title() const;       // "name [shorthash]", or just name while unhashed
};

// A LoRA file (.safetensors, .ckpt, .pt) under the LoRA folder.
struct LoraInfo {
  std::string name;   // relative path without extension, '/' separators: what <lora:NAME:w> names
  std::string alias;  // the file name without extension (A1111 also accepts it in tags)
  std::string path;
  std::string sha256;              // empty until computed
  std::string short_hash() const;  // sha256[:12], A1111's "Lora hashes" form
};

// A ControlNet file or diffusers folder under the ControlNet folder.
struct ControlNetInfo {
  std::string name;  // relative path without extension
  std::string path;
};

struct RegistryOptions {
  std::string models_dir;      // scanned recursively; may be empty when `single_model` is set
  std::string lora_dir;        // default: models_dir/lora (also models_dir/Lora); may not exist
  std::string controlnet_dir;  // default: models_dir/controlnet; may not exist
  std::string single_model;    // -m FILE: a model outside models_dir, listed by its file name
  std::string model_config;    // --model-config DIR for models without their own hyper-parameters
  std::string hash_cache;      // the cache file; default models_dir/.sdc-hashes.json
};

class ModelRegistry {
 public:
  // Scans once. sdc::Error when models_dir is given but is not a folder, or when no folder and
  // no single model are given.
  explicit ModelRegistry(RegistryOptions options);

  // Scans the folders again (A1111 /refresh-checkpoints, /refresh-loras). Known hashes survive
  // when the file's size and modification time did not change.
  void refresh();

  std::vector<ModelInfo> models() const;  // sorted by name
  std::vector<LoraInfo> loras() const;
  std::vector<ControlNetInfo> controlnets() const;

  // Looks a model up by any name a client may hold: name, title, model_name, stem (unique),
  // short hash or full sha256 (A1111's checkpoint aliases). Throws BadName for a name with "..",
  // an absolute path, a backslash or a NUL; NotFound (listing the known names) otherwise.
  ModelInfo find_model(const std::string& id) const;
  LoraInfo find_lora(const std::string& name) const;
  ControlNetInfo find_controlnet(const std::string& name) const;

  // The model's sha256, computed now (reading the whole file, or every weight file of a
  // diffusers folder in sorted order) when not yet known, then cached. Blocking; thread-safe.
  std::string hash_model(const std::string& name);
  std::string hash_lora(const std::string& name);

  const RegistryOptions& options() const { return options_; }

 private:
  RegistryOptions options_;
  mutable std::mutex mutex_;
  std::vector<ModelInfo> models_;
  std::vector<LoraInfo> loras_;
  std::vector<ControlNetInfo> controlnets_;
  std::unique_ptr<HashCache> hashes_;
};

// Throws BadName unless `name` is a relative path inside a folder: not empty, no "..", no
// absolute path, no backslash, no NUL, no control characters.
void check_relative_name(const std::string& what_kind, const std::string& name);

}  // namespace sdc::engine
