// ZipArchive: read-only access to a zip image in memory (a memory-mapped file). libzip opens and
// checks the archive (central directory against every local header) and decompresses; stored
// (uncompressed) entries — which is how torch.save writes tensor data — are handed out as views
// into the mapping without a copy, at the data offset read from the entry's local header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

struct zip;

namespace sdc::io {

struct ZipEntry {
  std::string name;
  uint64_t index = 0;  // libzip's entry index
  uint64_t size = 0;   // uncompressed bytes
  uint64_t compressed_size = 0;
  uint16_t method = 0;        // 0 = stored, 8 = deflate, ...
  uint64_t local_header = 0;  // offset of the entry's local header in the archive
};

// The bytes of one entry: a view into the archive (stored) or an owned buffer (compressed).
struct ZipBytes {
  const uint8_t* data = nullptr;
  size_t size = 0;
  std::shared_ptr<const void> owner;
};

class ZipArchive {
 public:
  // `data`/`size` stay valid as long as `owner` lives. `path` names the file in errors. Throws
  // sdc::Error for anything that is not a consistent, unencrypted zip archive.
  ZipArchive(const uint8_t* data, size_t size, std::string path, std::shared_ptr<const void> owner);
  ~ZipArchive();
  ZipArchive(const ZipArchive&) = delete;
  ZipArchive& operator=(const ZipArchive&) = delete;

  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(const std::string& name) const;  // null if absent

  // The entry's bytes. Stored: a view (zero-copy). Compressed: decompressed by libzip into an
  // owned buffer; the declared size is checked against what the method can expand to first.
  ZipBytes read(const ZipEntry& e);

 private:
  void read_central_directory();

  const uint8_t* data_;
  size_t size_;
  std::string path_;
  std::shared_ptr<const void> owner_;
  zip* za_ = nullptr;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> by_name_;  // first entry of each name
};

}  // namespace sdc::io
