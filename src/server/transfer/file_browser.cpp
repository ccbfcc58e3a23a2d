// FileBrowser: path checks on the lexical form first, then on the resolved (canonical) path.
#include "server/transfer/file_browser.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>

#include "io/open_file.h"
#include "model/classify.h"
#include "model/compiled_model.h"

namespace sdc::server::transfer {

namespace fs = std::filesystem;

namespace {
// Control bytes (a NUL above all) shown as \xNN so the message stays one readable line.
std::string printable(const std::string& s) {
  std::string out;
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    } else {
      out.push_back(ch);
    }
  }
  return out;
}
}  // namespace

PathRefused::PathRefused(const std::string& path, const std::string& why)
    : Error(printable(path), "path", "a path inside the configured folders", why) {}

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// True when `p` (canonical) is `root` (canonical) or below it.
bool is_within(const fs::path& p, const fs::path& root) {
  auto rit = root.begin();
  auto pit = p.begin();
  for (; rit != root.end(); ++rit, ++pit) {
    if (rit->empty()) continue;  // a trailing separator
    if (pit == p.end() || *pit != *rit) return false;
  }
  return true;
}

int64_t mtime_ns(const struct stat& st) {
  return int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

}  // namespace

std::string checked_relative_path(const std::string& rel, bool allow_empty) {
  if (rel.find('\0') != std::string::npos) throw PathRefused(rel, "it contains a NUL byte");
  if (rel.find('\\') != std::string::npos) throw PathRefused(rel, "it contains a backslash");
  if (!rel.empty() && rel[0] == '/') throw PathRefused(rel, "it is absolute");
  if (rel.size() >= 2 && std::isalpha(static_cast<unsigned char>(rel[0])) && rel[1] == ':')
    throw PathRefused(rel, "it is absolute");
  std::string out;
  size_t i = 0;
  while (i <= rel.size()) {
    size_t slash = rel.find('/', i);
    if (slash == std::string::npos) slash = rel.size();
    std::string part = rel.substr(i, slash - i);
    i = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") throw PathRefused(rel, "it contains \"..\"");
    if (!out.empty()) out += '/';
    out += part;
  }
  if (out.empty() && !allow_empty) throw PathRefused(rel, "it is empty");
  return out;
}

bool is_model_file_name(const std::string& name) {
  static const char* const kExt[] = {".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf"};
  const std::string n = lower(name);
  for (const char* e : kExt) {
    const std::string ext(e);
    if (n.size() > ext.size() && n.compare(n.size() - ext.size(), ext.size(), ext) == 0)
      return true;
  }
  return false;
}

FileBrowser::FileBrowser(std::vector<FileRoot> roots) {
  for (FileRoot& r : roots) {
    std::error_code ec;
    fs::path canon = fs::canonical(r.dir, ec);
    if (ec || !fs::is_directory(canon, ec))
      throw Error(r.dir.string(), "--" + r.name + "-dir", "an existing folder", "none");
    for (const FileRoot& other : roots_)
      if (other.name == r.name)
        throw Error(r.dir.string(), "root", "a unique name", r.name + " twice");
    roots_.push_back(FileRoot{r.name, canon});
  }
}

const FileRoot& FileBrowser::find_root(const std::string& name) const {
  for (const FileRoot& r : roots_)
    if (r.name == name) return r;
  std::string known;
  for (const FileRoot& r : roots_) known += (known.empty() ? "" : ", ") + r.name;
  throw Error("", "root", "one of: " + known, name.empty() ? "(empty)" : name);
}

fs::path FileBrowser::resolve(const std::string& root, const std::string& rel) const {
  const FileRoot& r = find_root(root);
  const std::string clean = checked_relative_path(rel, true);
  fs::path joined = clean.empty() ? r.dir : r.dir / clean;
  std::error_code ec;
  fs::path canon = fs::canonical(joined, ec);
  if (ec) throw Error(rel, "path", "an existing file or folder in " + root, "none");
  if (!is_within(canon, r.dir))
    throw PathRefused(rel, "a symbolic link on the way leads outside the " + root + " folder");
  return canon;
}

FileEntry FileBrowser::describe_path(const fs::path& abs, const std::string& rel) const {
  FileEntry e;
  e.name = fs::path(rel).filename().string();
  e.path = rel;
  std::error_code ec;
  e.is_dir = fs::is_directory(abs, ec);
  const bool diffusers = e.is_dir && fs::exists(abs / "model_index.json", ec);
  if (e.is_dir && !diffusers) return e;

  struct stat st {};
  if (::stat(abs.c_str(), &st) != 0) {
    e.error = "cannot be read";
    return e;
  }
  if (!e.is_dir) e.size = uint64_t(st.st_size);
  const std::string key = abs.string();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = cache_.find(key);
    if (it != cache_.end() && it->second.size == uint64_t(st.st_size) &&
        it->second.mtime_ns == mtime_ns(st)) {
      FileEntry cached = it->second.entry;
      cached.name = e.name;
      cached.path = rel;
      return cached;
    }
  }
  try {
    io::TensorFile file = io::open_tensor_file(abs.string());
    const model::Classification c = model::classify(file);
    e.size = file.file_size;
    e.format = io::format_name(file.format);
    e.kind = diffusers ? "diffusers" : model::kind_name(c.kind);
    e.architecture = model::architecture_name(c.architecture);
    e.supported = c.supported();
    if (c.kind == model::ModelKind::Compiled) {
      if (std::optional<model::CompiledInfo> info = model::read_compiled_info(file)) {
        nlohmann::json precision = nlohmann::json::object();
        for (const auto& [component, type] : info->precision)
          precision[component] = model::precision_label(type);
        nlohmann::json loras = nlohmann::json::array();
        for (const model::BakedLoraInfo& l : info->loras)
          loras.push_back({{"name", l.name}, {"scale", l.scale}, {"format", l.format}});
        nlohmann::json sizes = nlohmann::json::array();
        for (const auto& [w, h] : info->sizes) sizes.push_back({w, h});
        nlohmann::json defaults = nlohmann::json::object();
        if (!info->defaults.sampler.empty()) defaults["sampler"] = info->defaults.sampler;
        if (!info->defaults.scheduler.empty()) defaults["scheduler"] = info->defaults.scheduler;
        if (info->defaults.steps > 0) defaults["steps"] = info->defaults.steps;
        if (info->defaults.cfg_scale >= 0) defaults["cfg_scale"] = info->defaults.cfg_scale;
        if (!info->defaults.reason.empty()) defaults["reason"] = info->defaults.reason;
        e.details = {{"name", info->name}, {"precision", precision}, {"loras", loras},
                     {"sizes", sizes},     {"batch", info->batch},   {"defaults", defaults}};
      }
    }
  } catch (const std::exception& ex) {
    e.kind = "unknown";
    e.error = ex.what();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  cache_[key] = Cached{uint64_t(st.st_size), mtime_ns(st), e};
  return e;
}

FileEntry FileBrowser::describe(const std::string& root, const std::string& rel) const {
  const std::string clean = checked_relative_path(rel, false);
  return describe_path(resolve(root, clean), clean);
}

Listing FileBrowser::list(const std::string& root, const std::string& rel) const {
  Listing out;
  out.root = root;
  out.path = checked_relative_path(rel, true);
  const fs::path dir = resolve(root, out.path);
  const fs::path root_dir = find_root(root).dir;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(rel, "path", "a folder", "a file");
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    std::error_code ec2;
    fs::path target = fs::canonical(it->path(), ec2);
    if (ec2 || !is_within(target, root_dir)) continue;  // dangling, or leads outside
    const bool is_dir = fs::is_directory(target, ec2);
    if (!is_dir && !is_model_file_name(name)) continue;
    const std::string entry_rel = out.path.empty() ? name : out.path + "/" + name;
    out.entries.push_back(describe_path(target, entry_rel));
  }
  if (ec) throw Error(dir.string(), "list", "a readable folder", ec.message());
  std::sort(out.entries.begin(), out.entries.end(), [](const FileEntry& a, const FileEntry& b) {
    const bool a_folder = a.is_dir && a.kind.empty(), b_folder = b.is_dir && b.kind.empty();
    if (a_folder != b_folder) return a_folder;
    return a.name < b.name;
  });
  return out;
}

}  // namespace sdc::server::transfer
