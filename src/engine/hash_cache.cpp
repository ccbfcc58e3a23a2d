// HashCache: the JSON cache file of sha256 digests and hashing of models (files or folders).
#include "engine/hash_cache.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/error.h"
#include "io/atomic_file.h"
#include "io/sha256.h"

namespace sdc::engine {
namespace fs = std::filesystem;
namespace {

struct FileStamp {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
};

bool is_weight_file(const fs::path& p) {
  const std::string ext = p.extension().string();
  return ext == ".safetensors" || ext == ".bin" || ext == ".ckpt" || ext == ".pt" ||
         ext == ".json" || ext == ".txt";
}

// The files that make a diffusers folder, in a stable order (relative paths sorted).
std::vector<fs::path> folder_files(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && is_weight_file(e.path())) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

FileStamp stamp(const std::string& path) {
  std::error_code ec;
  FileStamp s;
  const fs::path p(path);
  if (fs::is_directory(p, ec)) {
    // A folder's stamp: total size and newest modification time of its files.
    for (const auto& f : folder_files(p)) {
      s.size += fs::file_size(f, ec);
      s.mtime_ns =
          std::max<int64_t>(s.mtime_ns, fs::last_write_time(f, ec).time_since_epoch().count());
    }
    return s;
  }
  s.size = fs::file_size(p, ec);
  if (ec) throw Error(path, "", "a readable model file", ec.message());
  s.mtime_ns = fs::last_write_time(p, ec).time_since_epoch().count();
  return s;
}

}  // namespace

std::string sha256_of_model_path(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return io::sha256_file(path);
  // A folder is hashed as the concatenation of its files' digests with their relative names, so
  // that renaming or moving a file inside it changes the result.
  io::Sha256 h;
  for (const auto& f : folder_files(path)) {
    const std::string rel = f.lexically_relative(path).generic_string();
    const std::string digest = io::sha256_file(f.string());
    h.update(rel.data(), rel.size() + 1);
    h.update(digest.data(), digest.size());
  }
  return h.hex_digest();
}

HashCache::HashCache(std::string cache_file) : file_(std::move(cache_file)) {
  if (file_.empty()) return;
  std::ifstream in(file_);
  if (!in) return;  // not written yet
  try {
    const nlohmann::json j = nlohmann::json::parse(in);
    for (const auto& [path, e] : j.at("sha256").items())
      entries_[path] = {e.at("size").get<uint64_t>(), e.at("mtime_ns").get<int64_t>(),
                        e.at("sha256").get<std::string>()};
  } catch (const std::exception& e) {
    std::cerr << "warning: " << file_ << ": ignoring an unreadable hash cache (" << e.what()
              << "); it will be rewritten\n";
    entries_.clear();
  }
}

std::string HashCache::lookup(const std::string& path) const {
  FileStamp s;
  try {
    s = stamp(path);
  } catch (const Error&) {
    return "";
  }
  std::lock_guard lock(mutex_);
  auto it = entries_.find(path);
  if (it == entries_.end() || it->second.size != s.size || it->second.mtime_ns != s.mtime_ns)
    return "";
  return it->second.sha256;
}

std::string HashCache::get_or_compute(const std::string& path) {
  if (std::string known = lookup(path); !known.empty()) return known;
  const FileStamp before = stamp(path);
  const std::string digest = sha256_of_model_path(path);  // slow: outside the lock
  std::lock_guard lock(mutex_);
  entries_[path] = {before.size, before.mtime_ns, digest};
  save_locked();
  return digest;
}

void HashCache::save_locked() {
  if (file_.empty()) return;
  // Files that are gone (deleted downloads, temporary conversions) leave the cache here, so that
  // it stays the size of the models on disk instead of growing with every file ever hashed.
  std::erase_if(entries_, [](const auto& kv) {
    std::error_code ec;
    return !fs::exists(kv.first, ec) && !ec;
  });
  nlohmann::json j;
  j["sha256"] = nlohmann::json::object();
  for (const auto& [path, e] : entries_)
    j["sha256"][path] = {{"size", e.size}, {"mtime_ns", e.mtime_ns}, {"sha256", e.sha256}};
  try {
    io::AtomicFile out(file_);
    const std::string text = j.dump(1);
    out.write(text.data(), text.size());
    out.commit();
  } catch (const std::exception& e) {
    if (!warned_) std::cerr << "warning: cannot write the hash cache: " << e.what() << "\n";
    warned_ = true;
  }
}

}  // namespace sdc::engine
