// Test helper: writes zip archives entry by entry with libzip, and PyTorch checkpoints
// (<folder>/data.pkl, <folder>/data/<key>, <folder>/version) from a pickle and its storages, so
// the checkpoint tests and the TAESD .pth tests can craft exactly the file they need.
#pragma once

#include <zip.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/fixtures.h"

namespace sdc::test {

struct ZipEntry {
  std::string name, data;
  bool deflate = false;
  // Pad the local header (an extra field, as torch's writer does) so that a stored entry's data
  // starts at a multiple of this; 0 leaves it where libzip puts it.
  uint32_t align = 0;
};

inline void write_zip(const std::string& path, const std::vector<ZipEntry>& entries) {
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  if (!z) throw std::runtime_error("zip_open failed");
  // libzip writes the local headers in index order, each 30 bytes + name + extra fields.
  uint64_t offset = 0;
  for (const ZipEntry& e : entries) {
    zip_source_t* s = zip_source_buffer(z, e.data.data(), e.data.size(), 0);
    const zip_int64_t i = zip_file_add(z, e.name.c_str(), s, ZIP_FL_OVERWRITE);
    if (i < 0 || zip_set_file_compression(z, zip_uint64_t(i),
                                          e.deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 9) != 0)
      throw std::runtime_error(zip_strerror(z));
    uint64_t data_at = offset + 30 + e.name.size();
    if (e.align) {
      const uint64_t pad = (e.align - (data_at + 4) % e.align) % e.align;
      const std::string zeros(pad, '\0');
      // Header id 0x4246 ("FB"), the one torch's writer pads with.
      if (zip_file_extra_field_set(z, zip_uint64_t(i), 0x4246, ZIP_EXTRA_FIELD_NEW,
                                   reinterpret_cast<const zip_uint8_t*>(zeros.data()),
                                   zip_uint16_t(pad), ZIP_FL_LOCAL) != 0)
        throw std::runtime_error(zip_strerror(z));
      data_at += 4 + pad;
    }
    offset = data_at + e.data.size();
  }
  if (zip_close(z) != 0) throw std::runtime_error("zip_close failed");
}

// A checkpoint at `path` with `pickle` as <folder>/data.pkl and `storages` as <folder>/data/<key>.
inline void write_ckpt(const std::string& path, const std::string& pickle,
                       const std::vector<std::pair<std::string, std::string>>& storages,
                       bool deflate = false, const std::string& folder = "archive") {
  std::vector<ZipEntry> entries{{folder + "/data.pkl", pickle, deflate}};
  for (const auto& [key, data] : storages)
    entries.push_back({folder + "/data/" + key, data, deflate});
  entries.push_back({folder + "/version", "3\n", false});
  write_zip(path, entries);
}

// The same as `dir`/c.ckpt; returns its path.
inline std::string make_ckpt(const TempDir& dir, const std::string& pickle,
                             const std::vector<std::pair<std::string, std::string>>& storages,
                             bool deflate = false, const std::string& folder = "archive") {
  const std::string path = dir.file("c.ckpt");
  write_ckpt(path, pickle, storages, deflate, folder);
  return path;
}

}  // namespace sdc::test
