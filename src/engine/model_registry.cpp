// ModelRegistry: scanning the folders, A1111-style names and aliases, and the hash cache.
#include "engine/model_registry.h"

#include <sys/stat.h>
#include <algorithm>

#include <filesystem>
#include <functional>

#include "common/error.h"
#include "engine/engine_errors.h"

namespace sdc::engine {
namespace fs = std::filesystem;
namespace {

bool hidden(const fs::path& p) {
  const std::string n = p.filename().string();
  return !n.empty() && n[0] == '.';
}

std::string lower_ext(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
  return e;
}

std::optional<ModelKind> model_kind(const fs::path& p) {
  std::error_code ec;
  if (fs::is_directory(p, ec)) {
    if (fs::exists(p / "model_index.json", ec)) return ModelKind::Diffusers;
    return std::nullopt;
  }
  const std::string e = lower_ext(p);
  if (e == ".safetensors") return ModelKind::Safetensors;
  if (e == ".ckpt") return ModelKind::Ckpt;
  if (e == ".gguf") return ModelKind::Gguf;
  return std::nullopt;
}

// Canonical form for "is this folder inside that one" checks; empty when it does not exist.
fs::path canonical_or_empty(const std::string& dir) {
  std::error_code ec;
  if (dir.empty()) return {};
  fs::path c = fs::canonical(dir, ec);
  return ec ? fs::path() : c;
}

std::string join_names(const std::vector<std::string>& names) {
  std::string s;
  for (size_t i = 0; i < names.size() && i < 20; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > 20) s += ", … (" + std::to_string(names.size()) + " in all)";
  return s;
}

std::string strip_title_hash(const std::string& id) {
  // "name [0123456789]" → "name"
  if (id.size() > 3 && id.back() == ']') {
    const size_t open = id.rfind(" [");
    if (open != std::string::npos) return id.substr(0, open);
  }
  return id;
}

ModelInfo make_model(const fs::path& path, const std::string& rel, ModelKind kind,
                     const RegistryOptions& o, const HashCache& hashes) {
  ModelInfo m;
  m.name = rel;
  m.kind = kind;
  m.path = fs::absolute(path).lexically_normal().string();
  std::string no_ext = rel;
  if (kind != ModelKind::Diffusers) no_ext = fs::path(rel).replace_extension().generic_string();
  m.model_name = no_ext;
  std::replace(m.model_name.begin(), m.model_name.end(), '/', '_');
  m.stem = kind == ModelKind::Diffusers ? path.filename().string() : path.stem().string();
  std::error_code ec;
  if (kind != ModelKind::Diffusers) m.size_bytes = fs::file_size(path, ec);
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) m.modified_unix = int64_t(st.st_mtime);
  if (kind == ModelKind::Safetensors || kind == ModelKind::Ckpt) m.model_config = o.model_config;
  m.sha256 = hashes.lookup(m.path);
  return m;
}

}  // namespace

const char* kind_name(ModelKind k) {
  switch (k) {
    case ModelKind::Safetensors:
      return "safetensors";
    case ModelKind::Ckpt:
      return "ckpt";
    case ModelKind::Gguf:
      return "gguf";
    case ModelKind::Diffusers:
      return "diffusers";
  }
  return "?";
}

std::string ModelInfo::short_hash() const {
  return sha256.substr(0, 10);
}
std::string ModelInfo::title() const {
  return sha256.empty() ? name : name + " [" + short_hash() + "]";
}
std::string LoraInfo::short_hash() const {
  return sha256.substr(0, 12);
}

void check_relative_name(const std::string& what_kind, const std::string& name) {
  if (name.empty()) throw BadName(what_kind, name, "not empty");
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f) throw BadName(what_kind, name, "no control characters");
  if (name.find('\\') != std::string::npos) throw BadName(what_kind, name, "no backslash");
  if (name[0] == '/' || name[0] == '~') throw BadName(what_kind, name, "not an absolute path");
  for (const auto& part : fs::path(name))
    if (part == "..") throw BadName(what_kind, name, "no '..'");
}

ModelRegistry::ModelRegistry(RegistryOptions options) : options_(std::move(options)) {
  std::error_code ec;
  if (options_.models_dir.empty() && options_.single_model.empty())
    throw UsageError("", "--models-dir", "a models folder or -m MODEL", "neither");
  if (!options_.models_dir.empty()) {
    if (!fs::is_directory(options_.models_dir, ec))
      throw UsageError(options_.models_dir, "--models-dir", "an existing folder", "no such folder");
    const fs::path root(options_.models_dir);
    if (options_.lora_dir.empty())
      options_.lora_dir = fs::is_directory(root / "Lora", ec) && !fs::is_directory(root / "lora")
                              ? (root / "Lora").string()
                              : (root / "lora").string();
    if (options_.controlnet_dir.empty())
      options_.controlnet_dir =
          fs::is_directory(root / "ControlNet", ec) && !fs::is_directory(root / "controlnet")
              ? (root / "ControlNet").string()
              : (root / "controlnet").string();
    if (options_.hash_cache.empty()) options_.hash_cache = (root / ".sdc-hashes.json").string();
  }
  hashes_ = std::make_unique<HashCache>(options_.hash_cache);
  refresh();
}

void ModelRegistry::refresh() {
  std::vector<ModelInfo> models;
  std::vector<LoraInfo> loras;
  std::vector<ControlNetInfo> controlnets;
  const fs::path lora_root = canonical_or_empty(options_.lora_dir);
  const fs::path control_root = canonical_or_empty(options_.controlnet_dir);
  std::error_code ec;

  if (!options_.models_dir.empty()) {
    const fs::path root(options_.models_dir);
    for (auto it = fs::recursive_directory_iterator(
             root, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const fs::path& p = it->path();
      if (hidden(p)) {
        if (it->is_directory(ec)) it.disable_recursion_pending();
        continue;
      }
      if (it->is_directory(ec)) {
        const fs::path c = canonical_or_empty(p.string());
        if ((!lora_root.empty() && c == lora_root) ||
            (!control_root.empty() && c == control_root)) {
          it.disable_recursion_pending();
          continue;
        }
      }
      const auto kind = model_kind(p);
      if (!kind) continue;
      if (*kind == ModelKind::Diffusers) it.disable_recursion_pending();
      const std::string rel = p.lexically_relative(root).generic_string();
      models.push_back(make_model(p, rel, *kind, options_, *hashes_));
    }
  }
  if (!options_.single_model.empty()) {
    const fs::path p(options_.single_model);
    const auto kind = model_kind(p);
    // Any file the loader understands may be given with -m (also .pt / .bin checkpoints).
    const ModelKind k =
        kind.value_or(fs::is_directory(p, ec) ? ModelKind::Diffusers : ModelKind::Ckpt);
    std::string name = p.filename().string();
    if (name.empty()) name = p.parent_path().filename().string();
    const bool listed = std::any_of(models.begin(), models.end(), [&](const ModelInfo& m) {
      return m.path == fs::absolute(p).lexically_normal().string();
    });
    if (!listed) models.push_back(make_model(p, name, k, options_, *hashes_));
  }
  std::sort(models.begin(), models.end(),
            [](const ModelInfo& a, const ModelInfo& b) { return a.name < b.name; });

  auto scan_side_folder = [&](const std::string& dir, auto&& add) {
    if (dir.empty() || !fs::is_directory(dir, ec)) return;
    for (auto it = fs::recursive_directory_iterator(
             dir, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (hidden(it->path())) {
        if (it->is_directory(ec)) it.disable_recursion_pending();
        continue;
      }
      add(it, it->path().lexically_relative(dir));
    }
  };
  scan_side_folder(options_.lora_dir, [&](auto& it, const fs::path& rel) {
    const std::string e = lower_ext(it->path());
    if (!it->is_regular_file(ec) || (e != ".safetensors" && e != ".ckpt" && e != ".pt")) return;
    LoraInfo l;
    l.name = fs::path(rel).replace_extension().generic_string();
    l.alias = it->path().stem().string();
    l.path = fs::absolute(it->path()).lexically_normal().string();
    l.sha256 = hashes_->lookup(l.path);
    loras.push_back(l);
  });
  scan_side_folder(options_.controlnet_dir, [&](auto& it, const fs::path& rel) {
    const std::string e = lower_ext(it->path());
    const bool folder = it->is_directory(ec) && fs::exists(it->path() / "config.json", ec);
    if (folder) it.disable_recursion_pending();
    if (!folder && (!it->is_regular_file(ec) ||
                    (e != ".safetensors" && e != ".pth" && e != ".ckpt" && e != ".pt")))
      return;
    ControlNetInfo c;
    c.name = folder ? rel.generic_string() : fs::path(rel).replace_extension().generic_string();
    c.path = fs::absolute(it->path()).lexically_normal().string();
    controlnets.push_back(c);
  });
  std::sort(loras.begin(), loras.end(),
            [](const LoraInfo& a, const LoraInfo& b) { return a.name < b.name; });
  std::sort(controlnets.begin(), controlnets.end(),
            [](const ControlNetInfo& a, const ControlNetInfo& b) { return a.name < b.name; });

  std::lock_guard lock(mutex_);
  models_ = std::move(models);
  loras_ = std::move(loras);
  controlnets_ = std::move(controlnets);
}

std::vector<ModelInfo> ModelRegistry::models() const {
  std::lock_guard lock(mutex_);
  return models_;
}
std::vector<LoraInfo> ModelRegistry::loras() const {
  std::lock_guard lock(mutex_);
  return loras_;
}
std::vector<ControlNetInfo> ModelRegistry::controlnets() const {
  std::lock_guard lock(mutex_);
  return controlnets_;
}

ModelInfo ModelRegistry::find_model(const std::string& id) const {
  check_relative_name("model", id);
  const std::string bare = strip_title_hash(id);
  std::lock_guard lock(mutex_);
  auto match = [&](auto pred) -> const ModelInfo* {
    const ModelInfo* found = nullptr;
    for (const auto& m : models_)
      if (pred(m)) {
        if (found) return nullptr;  // ambiguous: not this alias
        found = &m;
      }
    return found;
  };
  for (auto pred : std::initializer_list<std::function<bool(const ModelInfo&)>>{
           [&](const ModelInfo& m) { return m.name == id || m.title() == id; },
           [&](const ModelInfo& m) { return m.name == bare; },
           [&](const ModelInfo& m) { return m.model_name == bare; },
           [&](const ModelInfo& m) { return m.stem == bare; },
           [&](const ModelInfo& m) {
             return !m.sha256.empty() && (m.short_hash() == id || m.sha256 == id);
           }})
    if (const ModelInfo* m = match(pred)) return *m;
  std::vector<std::string> names;
  for (const auto& m : models_) names.push_back(m.name);
  throw NotFound("model", id, join_names(names));
}

LoraInfo ModelRegistry::find_lora(const std::string& name) const {
  check_relative_name("LoRA", name);
  std::lock_guard lock(mutex_);
  for (const auto& l : loras_)
    if (l.name == name) return l;
  for (const auto& l : loras_)
    if (l.alias == name) return l;
  std::vector<std::string> names;
  for (const auto& l : loras_) names.push_back(l.name);
  throw NotFound("LoRA", name, join_names(names));
}

ControlNetInfo ModelRegistry::find_controlnet(const std::string& name) const {
  check_relative_name("ControlNet", name);
  std::lock_guard lock(mutex_);
  for (const auto& c : controlnets_)
    if (c.name == name || fs::path(c.name).filename().string() == name) return c;
  std::vector<std::string> names;
  for (const auto& c : controlnets_) names.push_back(c.name);
  throw NotFound("ControlNet", name, join_names(names));
}

std::string ModelRegistry::hash_model(const std::string& name) {
  const ModelInfo m = find_model(name);
  if (!m.sha256.empty()) return m.sha256;
  const std::string digest = hashes_->get_or_compute(m.path);
  std::lock_guard lock(mutex_);
  for (auto& e : models_)
    if (e.path == m.path) e.sha256 = digest;
  return digest;
}

std::string ModelRegistry::hash_lora(const std::string& name) {
  const LoraInfo l = find_lora(name);
  if (!l.sha256.empty()) return l.sha256;
  const std::string digest = hashes_->get_or_compute(l.path);
  std::lock_guard lock(mutex_);
  for (auto& e : loras_)
    if (e.path == l.path) e.sha256 = digest;
  return digest;
}

}  // namespace sdc::engine
