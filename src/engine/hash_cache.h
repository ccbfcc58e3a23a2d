// HashCache: sha256 of large files computed once and remembered in a small JSON file, keyed by
// absolute path and valid while the file's size and modification time are unchanged (as A1111's
// cache.json). Hashing a 2–4 GB checkpoint takes seconds, so the cache is what makes
// "Model hash" free after the first time. The file is rewritten atomically after each new hash,
// without the entries of files that no longer exist.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace sdc::engine {

class HashCache {
 public:
  // `cache_file` may not exist yet; empty: remember in memory only. A cache file that cannot be
  // parsed is ignored with a warning on stderr (it is only a cache) and rewritten.
  explicit HashCache(std::string cache_file);

  // The cached digest when `path`'s size and mtime still match, else empty.
  std::string lookup(const std::string& path) const;
  // Hashes `path` (a file, or a diffusers folder: every weight file in sorted order) unless
  // cached, stores and persists the result. Throws sdc::Error for an unreadable file. A cache
  // file that cannot be written is reported on stderr once; the digest is still returned.
  std::string get_or_compute(const std::string& path);

  const std::string& file() const { return file_; }

 private:
  struct Entry {
    uint64_t size = 0;
    int64_t mtime_ns = 0;
    std::string sha256;
  };
  void save_locked();

  std::string file_;
  mutable std::mutex mutex_;
  std::map<std::string, Entry> entries_;
  bool warned_ = false;
};

// The sha256 of a file, or of a diffusers folder (its weight files, sorted, hashed as one stream).
std::string sha256_of_model_path(const std::string& path);

}  // namespace sdc::engine
