// FileBrowser: the server-side files a user may pick as a convert source — the models folder and
// an optional imports folder, nothing else. Paths from requests are relative to one of those
// roots; absolute paths, "..", NUL, backslashes and symlinks whose target leaves the roots are
// refused (the check is made on the fully resolved path, so a symlinked folder on the way cannot
// smuggle a path out either). Each model file is described with `sdc inspect`'s classifier:
// kind (checkpoint, LoRA, ControlNet, VAE, compiled …), architecture, and for compiled models
// the precision per component, baked LoRAs, sizes and recommended settings. Descriptions are
// cached per (path, size, mtime), since classifying a .ckpt reads its pickle.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace sdc::server::transfer {

struct FileRoot {
  std::string name;           // "models", "imports": how requests name the root
  std::filesystem::path dir;  // an existing folder
};

// What a model file is. `kind` is "checkpoint", "lora", "controlnet", "vae", "text_encoder",
// "unet", "compiled", "diffusers" (a diffusers folder) or "unknown"; `error` says why a file that
// looks like a model could not be read.
struct FileEntry {
  std::string name;  // file or folder name
  std::string path;  // relative to the root, '/'-separated
  bool is_dir = false;
  uint64_t size = 0;  // bytes (a diffusers folder: its weight files)
  std::string kind, format, architecture, error;
  bool supported = false;
  nlohmann::json details;  // compiled models: precision, loras, sizes, batch, defaults
};

struct Listing {
  std::string root, path;          // as requested, normalised ("" for the root itself)
  std::vector<FileEntry> entries;  // folders first, then files, each by name
};

// A path from a request that is refused (400): absolute, "..", a symlink leaving the root …
class PathRefused : public Error {
 public:
  PathRefused(const std::string& path, const std::string& why);
};

class FileBrowser {
 public:
  // Roots must exist; sdc::Error naming the folder otherwise. Duplicate names are an error.
  explicit FileBrowser(std::vector<FileRoot> roots);

  const std::vector<FileRoot>& roots() const { return roots_; }

  // The folder `rel` of root `root` ("" = the root): sub-folders and model files (.safetensors,
  // .ckpt, .pt, .pth, .bin, .gguf; a folder holding model_index.json is listed as one
  // "diffusers" entry). Hidden entries (leading '.') and symlinks leading outside are left out.
  // PathRefused for bad paths; NotFound-style sdc::Error when the folder does not exist.
  Listing list(const std::string& root, const std::string& rel) const;

  // The absolute, resolved path of `rel` inside `root`, which must exist. PathRefused when it is
  // not inside the root (after resolving symlinks) or is malformed.
  std::filesystem::path resolve(const std::string& root, const std::string& rel) const;

  // One file's description (as in list()).
  FileEntry describe(const std::string& root, const std::string& rel) const;

 private:
  const FileRoot& find_root(const std::string& name) const;
  FileEntry describe_path(const std::filesystem::path& abs, const std::string& rel) const;

  std::vector<FileRoot> roots_;  // dirs canonical
  struct Cached {
    uint64_t size;
    int64_t mtime_ns;
    FileEntry entry;
  };
  mutable std::mutex mutex_;
  mutable std::map<std::string, Cached> cache_;
};

// The checks on a relative path alone (no file system): refuses "", absolute paths, "..", NUL
// and backslashes. Returns the normalised '/'-joined form ("a/b"; "." parts dropped).
std::string checked_relative_path(const std::string& rel, bool allow_empty);

bool is_model_file_name(const std::string& name);  // by extension, for listing only

}  // namespace sdc::server::transfer
