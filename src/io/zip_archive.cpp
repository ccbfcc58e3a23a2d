// ZipArchive over a memory image. libzip does the checking and the decompression; the small
// central-directory walk here exists only to learn each entry's local header offset, which
// libzip does not expose and which zero-copy access to stored entries needs.
#include "io/zip_archive.h"

#include <zip.h>

#include <algorithm>
#include <cstring>

#include "common/error.h"

namespace sdc::io {

namespace {

uint64_t rd(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50,
                   kZip64EndSig = 0x06064b50, kZip64LocatorSig = 0x07064b50;
constexpr size_t kLocalHeader = 30, kCentralHeader = 46, kEndRecord = 22;
// Deflate cannot expand data by more than about 1032:1; a larger claim is not real.
constexpr uint64_t kMaxDeflateRatio = 1032;

}  // namespace

ZipArchive::ZipArchive(const uint8_t* data, size_t size, std::string path,
                       std::shared_ptr<const void> owner)
    : data_(data), size_(size), path_(std::move(path)), owner_(std::move(owner)) {
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t* src = zip_source_buffer_create(data, size, 0, &err);
  if (!src) {
    const std::string msg = zip_error_strerror(&err);
    zip_error_fini(&err);
    throw Error(path_, "zip archive", "a readable zip archive", msg);
  }
  za_ = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &err);
  if (!za_) {
    zip_source_free(src);
    const std::string msg = zip_error_strerror(&err);
    zip_error_fini(&err);
    throw Error(path_, "zip archive", "a valid zip archive", msg);
  }
  zip_error_fini(&err);
  try {
    const zip_int64_t n = zip_get_num_entries(za_, 0);
    for (zip_int64_t i = 0; i < n; ++i) {
      zip_stat_t st;
      zip_stat_init(&st);
      if (zip_stat_index(za_, zip_uint64_t(i), ZIP_FL_ENC_RAW, &st) != 0 ||
          !(st.valid & ZIP_STAT_NAME))
        throw Error(path_, "zip entry " + std::to_string(i), "a readable entry", zip_strerror(za_));
      ZipEntry e;
      e.name = st.name;
      e.index = zip_uint64_t(i);
      e.size = st.size;
      e.compressed_size = st.comp_size;
      e.method = uint16_t(st.comp_method);
      if (st.encryption_method != ZIP_EM_NONE)
        throw Error(path_, e.name, "an unencrypted zip entry", "an encrypted one");
      by_name_.emplace(e.name, entries_.size());
      entries_.push_back(std::move(e));
    }
    read_central_directory();
  } catch (...) {
    zip_discard(za_);
    throw;
  }
}

ZipArchive::~ZipArchive() {
  if (za_) zip_discard(za_);
}

void ZipArchive::read_central_directory() {
  auto bad = [this](const std::string& what, const std::string& found) {
    return Error(path_, "zip central directory", what, found);
  };
  // libzip has accepted the archive, so the end record is there; find it the same way (the last
  // signature whose comment reaches the end of the file).
  if (size_ < kEndRecord) throw bad("an end-of-central-directory record", "a shorter file");
  size_t end = size_ - kEndRecord;
  const size_t lowest = size_ > kEndRecord + 0xffff ? size_ - kEndRecord - 0xffff : 0;
  for (;;) {
    if (rd(data_ + end, 4) == kEndSig && end + kEndRecord + rd(data_ + end + 20, 2) == size_) break;
    if (end == lowest) throw bad("an end-of-central-directory record", "none");
    --end;
  }
  uint64_t count = rd(data_ + end + 10, 2), cd_offset = rd(data_ + end + 16, 4);
  // ZIP64 (saturated fields): a locator right before the end record points at the ZIP64 end
  // record. Without a locator the saturated values are taken as they are, as libzip does.
  if ((count == 0xffff || cd_offset == 0xffffffff) && end >= 20 &&
      rd(data_ + end - 20, 4) == kZip64LocatorSig) {
    const uint64_t rec = rd(data_ + end - 20 + 8, 8);
    if (rec > size_ || size_ - rec < 56 || rd(data_ + rec, 4) != kZip64EndSig)
      throw bad("a ZIP64 end-of-central-directory record", "none at offset " + std::to_string(rec));
    count = rd(data_ + rec + 32, 8);
    cd_offset = rd(data_ + rec + 48, 8);
  }
  if (count != entries_.size())
    throw bad(std::to_string(entries_.size()) + " entries (as libzip reads it)",
              std::to_string(count));
  uint64_t pos = cd_offset;
  for (ZipEntry& e : entries_) {
    if (pos > size_ || size_ - pos < kCentralHeader || rd(data_ + pos, 4) != kCentralSig)
      throw bad("a central directory header at offset " + std::to_string(pos), "none");
    const uint8_t* h = data_ + pos;
    const uint64_t name_len = rd(h + 28, 2), extra_len = rd(h + 30, 2), comment_len = rd(h + 32, 2);
    if (size_ - pos - kCentralHeader < name_len + extra_len + comment_len)
      throw bad("a central directory header inside the file", "one past its end");
    const uint8_t* name = h + kCentralHeader;
    if (name_len != e.name.size() || std::memcmp(name, e.name.data(), name_len) != 0)
      throw bad("entry " + std::to_string(e.index) + " named '" + e.name + "'", "another name");
    uint64_t local = rd(h + 42, 4);
    if (local == 0xffffffff) {
      // The ZIP64 extra field lists, in order, only the fields whose 32-bit slot is saturated.
      const uint8_t* x = name + name_len;
      const uint8_t* xend = x + extra_len;
      bool found = false;
      while (xend - x >= 4) {
        const uint64_t id = rd(x, 2), len = rd(x + 2, 2);
        if (uint64_t(xend - x - 4) < len) break;
        if (id == 1) {
          uint64_t skip =
              (rd(h + 24, 4) == 0xffffffff ? 8 : 0) + (rd(h + 20, 4) == 0xffffffff ? 8 : 0);
          if (skip + 8 <= len) {
            local = rd(x + 4 + skip, 8);
            found = true;
          }
          break;
        }
        x += 4 + len;
      }
      if (!found) throw bad("a ZIP64 local header offset for '" + e.name + "'", "none");
    }
    e.local_header = local;
    pos += kCentralHeader + name_len + extra_len + comment_len;
  }
}

const ZipEntry* ZipArchive::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

ZipBytes ZipArchive::read(const ZipEntry& e) {
  if (e.method == ZIP_CM_STORE) {
    if (e.compressed_size != e.size)
      throw Error(path_, e.name, "a stored entry of " + std::to_string(e.size) + " bytes",
                  std::to_string(e.compressed_size) + " bytes in the archive");
    const uint64_t lh = e.local_header;
    if (lh > size_ || size_ - lh < kLocalHeader || rd(data_ + lh, 4) != kLocalSig)
      throw Error(path_, e.name, "a local file header at offset " + std::to_string(lh), "none");
    const uint64_t begin = lh + kLocalHeader + rd(data_ + lh + 26, 2) + rd(data_ + lh + 28, 2);
    if (begin > size_ || size_ - begin < e.size)
      throw Error(path_, e.name,
                  std::to_string(e.size) + " bytes of data at offset " + std::to_string(begin),
                  "a file of " + std::to_string(size_) + " bytes (truncated)");
    return {data_ + begin, size_t(e.size), owner_};
  }
  if (e.method != ZIP_CM_DEFLATE)
    throw Error(path_, e.name, "a stored or deflated entry",
                "compression method " + std::to_string(e.method));
  if (e.size / kMaxDeflateRatio > e.compressed_size)
    throw Error(path_, e.name,
                "at most " + std::to_string(kMaxDeflateRatio) + "x the compressed size of " +
                    std::to_string(e.compressed_size) + " bytes",
                std::to_string(e.size) + " bytes");
  zip_file_t* f = zip_fopen_index(za_, e.index, 0);
  if (!f) throw Error(path_, e.name, "a readable entry", zip_strerror(za_));
  // Grow with the data actually decompressed rather than trusting the declared size up front.
  auto buf = std::make_shared<std::vector<uint8_t>>();
  buf->reserve(size_t(std::min<uint64_t>(e.size, uint64_t(64) << 20)));
  std::vector<uint8_t> chunk(1 << 20);
  for (;;) {
    const zip_int64_t got = zip_fread(f, chunk.data(), chunk.size());
    if (got < 0) {
      const std::string msg = zip_file_strerror(f);
      zip_fclose(f);
      throw Error(path_, e.name, "valid compressed data", msg);
    }
    if (got == 0) break;
    if (uint64_t(got) > e.size - buf->size()) {
      zip_fclose(f);
      throw Error(path_, e.name, std::to_string(e.size) + " bytes", "more data");
    }
    buf->insert(buf->end(), chunk.begin(), chunk.begin() + got);
  }
  zip_fclose(f);
  if (buf->size() != e.size)
    throw Error(path_, e.name, std::to_string(e.size) + " bytes", std::to_string(buf->size()));
  const uint8_t* p = buf->data();
  return {p, buf->size(), std::shared_ptr<const void>(buf, p)};
}

}  // namespace sdc::io
