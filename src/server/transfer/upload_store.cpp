// UploadStore: sessions in memory, bytes in per-upload folders (see upload_store.h).
#include "server/transfer/upload_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "io/sha256.h"
#include "server/transfer/file_names.h"

namespace sdc::server::transfer {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct UploadSession {
  std::string id, name;
  std::optional<uint64_t> size;
  uint64_t received = 0;
  bool complete = false, resumable = true;
  bool busy = false;  // a request is writing
  bool gone = false;  // removed from the store (a writer still holding it must stop)
  int leases = 0;
  io::Sha256 sha;
  std::string sha256;
  fs::path folder, part_path, final_path;
  Clock::time_point touched = Clock::now();
};

UploadNotFound::UploadNotFound(const std::string& id)
    : Error("", "upload", "a known upload id", id.empty() ? "(empty)" : id) {}
UploadConflict::UploadConflict(const std::string& id, const std::string& expected,
                               const std::string& found)
    : Error("upload " + id, "", expected, found) {}
UploadTooLarge::UploadTooLarge(const std::string& name, uint64_t max_bytes,
                               const std::string& found)
    : Error(name, "size", "at most " + std::to_string(max_bytes) + " bytes (--max-upload-size)",
            found) {}

namespace {

// "up-" and 32 lowercase hex digits (checked by hand: std::regex trips GCC 12's
// maybe-uninitialized under the sanitizer build).
bool is_upload_id(const std::string& s) {
  if (s.size() != 35 || s.compare(0, 3, "up-") != 0) return false;
  return std::all_of(s.begin() + 3, s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string new_id() {
  std::random_device rd;
  static const char* hex = "0123456789abcdef";
  std::string id = "up-";
  for (int i = 0; i < 8; ++i) {
    uint32_t v = rd();
    for (int k = 0; k < 4; ++k) {
      id.push_back(hex[(v >> (k * 8)) & 0xF]);
    }
  }
  return id;
}

void remove_folder(const fs::path& p) {
  std::error_code ec;
  fs::remove_all(p, ec);
}

}  // namespace

// ---- ChunkWriter ----

ChunkWriter::ChunkWriter(UploadStore* store, std::shared_ptr<UploadSession> s,
                         std::optional<uint64_t> length)
    : store_(store), s_(std::move(s)), length_(length) {
  fd_ = ::open(s_->part_path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0 || ::ftruncate(fd_, off_t(s_->received)) != 0 ||
      ::lseek(fd_, off_t(s_->received), SEEK_SET) < 0) {
    const std::string why = std::strerror(errno);
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    std::lock_guard<std::mutex> lock(store_->mutex_);
    s_->busy = false;
    throw Error(s_->part_path.string(), "open", "a writable upload file", why);
  }
}

ChunkWriter::ChunkWriter(ChunkWriter&& o) noexcept
    : store_(o.store_),
      s_(std::move(o.s_)),
      length_(o.length_),
      written_(o.written_),
      fd_(o.fd_),
      done_(o.done_) {
  o.fd_ = -1;
  o.done_ = true;
}

ChunkWriter::~ChunkWriter() {
  if (!done_ && s_) abandon();
  if (fd_ >= 0) ::close(fd_);
}

void ChunkWriter::abandon() {
  done_ = true;
  std::lock_guard<std::mutex> lock(store_->mutex_);
  s_->busy = false;
  s_->touched = Clock::now();
  if (!s_->resumable && !s_->gone) store_->erase_locked(s_->id);
}

void ChunkWriter::write(const char* data, size_t n) {
  const uint64_t after = s_->received + n;
  if ((s_->size && after > *s_->size) || (length_ && written_ + n > *length_)) {
    const std::string found = std::to_string(after) + " bytes sent";
    abandon();
    throw UploadConflict(s_->id,
                         "no more bytes than announced (" +
                             (length_ ? std::to_string(*length_) + " in this request"
                                      : std::to_string(*s_->size) + " in all") +
                             ")",
                         found);
  }
  if (after > store_->options_.max_bytes) {
    abandon();
    throw UploadTooLarge(s_->name, store_->options_.max_bytes, "more was sent");
  }
  const char* p = data;
  size_t left = n;
  while (left > 0) {
    ssize_t w = ::write(fd_, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const std::string why = w < 0 ? std::strerror(errno) : "no progress";
      // Keep the file consistent with `received`: drop the bytes of this buffer.
      if (::ftruncate(fd_, off_t(s_->received)) != 0) { /* reported below anyway */
      }
      abandon();
      throw Error(s_->part_path.string(), "write", "all bytes written", why);
    }
    p += w;
    left -= size_t(w);
  }
  // Hash and count only what is on disk, so a resumed upload continues a consistent state.
  s_->sha.update(data, n);
  written_ += n;
  std::lock_guard<std::mutex> lock(store_->mutex_);  // get() reads `received` meanwhile
  s_->received = after;
}

UploadInfo ChunkWriter::finish() {
  if (length_ && written_ != *length_) {
    abandon();
    throw UploadConflict(s_->id, std::to_string(*length_) + " bytes in this request",
                         std::to_string(written_));
  }
  if (!s_->size && !s_->resumable) s_->size = s_->received;  // a single request of unknown length
  const bool all_there = s_->size && s_->received == *s_->size;
  if (all_there) {
    if (::fsync(fd_) != 0) {
      const std::string why = std::strerror(errno);
      abandon();
      throw Error(s_->part_path.string(), "fsync", "success", why);
    }
    ::close(fd_);
    fd_ = -1;
    if (::rename(s_->part_path.c_str(), s_->final_path.c_str()) != 0) {
      const std::string why = std::strerror(errno);
      abandon();
      throw Error(s_->final_path.string(), "rename", "success", why);
    }
    s_->sha256 = s_->sha.hex_digest();
  }
  done_ = true;
  std::lock_guard<std::mutex> lock(store_->mutex_);
  s_->busy = false;
  s_->complete = all_there;
  s_->touched = Clock::now();
  return store_->info_locked(*s_);
}

// ---- UploadLease ----

UploadLease::UploadLease(UploadStore* store, std::shared_ptr<UploadSession> s, UploadInfo info)
    : store_(store), s_(std::move(s)), info_(std::move(info)), path_(info_.path) {}

UploadLease::~UploadLease() {
  std::lock_guard<std::mutex> lock(store_->mutex_);
  --s_->leases;
  s_->touched = Clock::now();
}

// ---- UploadStore ----

UploadStore::UploadStore(UploadOptions options) : options_(std::move(options)) {
  std::error_code ec;
  fs::create_directories(options_.dir, ec);
  if (!fs::is_directory(options_.dir, ec))
    throw Error(options_.dir.string(), "--uploads-dir", "a folder that can be created", "none");
  // Sessions do not survive a restart: clear what an earlier run left (our folders only).
  for (fs::directory_iterator it(options_.dir, ec), end; !ec && it != end; it.increment(ec))
    if (is_upload_id(it->path().filename().string()) && it->is_directory() && !it->is_symlink())
      remove_folder(it->path());
}

UploadStore::~UploadStore() = default;

UploadInfo UploadStore::info_locked(const UploadSession& s) const {
  UploadInfo i;
  i.id = s.id;
  i.name = s.name;
  i.size = s.size;
  i.received = s.received;
  i.complete = s.complete;
  i.resumable = s.resumable;
  if (s.complete) {
    i.sha256 = s.sha256;
    i.path = s.final_path.string();
  }
  return i;
}

std::shared_ptr<UploadSession> UploadStore::find_locked(const std::string& id) const {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) throw UploadNotFound(id);
  return it->second;
}

void UploadStore::erase_locked(const std::string& id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  it->second->gone = true;
  remove_folder(it->second->folder);
  sessions_.erase(it);
}

UploadInfo UploadStore::create(const std::string& name, std::optional<uint64_t> size,
                               bool resumable) {
  purge_expired();
  const std::string clean = sanitize_file_name(name, "upload.safetensors");
  if (size && *size > options_.max_bytes)
    throw UploadTooLarge(clean, options_.max_bytes, std::to_string(*size) + " bytes");
  std::lock_guard<std::mutex> lock(mutex_);
  size_t incomplete = 0;
  for (const auto& [id, s] : sessions_) incomplete += s->complete ? 0 : 1;
  if (incomplete >= options_.max_incomplete)
    throw UploadConflict("(new)",
                         "fewer than " + std::to_string(options_.max_incomplete) +
                             " uploads under way (finish or delete one)",
                         std::to_string(incomplete));
  auto s = std::make_shared<UploadSession>();
  do s->id = new_id();
  while (sessions_.count(s->id));
  s->name = clean;
  s->size = size;
  s->resumable = resumable;
  s->folder = options_.dir / s->id;
  s->part_path = s->folder / ("." + clean + ".part");
  s->final_path = s->folder / clean;
  std::error_code ec;
  if (!fs::create_directory(s->folder, ec))
    throw Error(s->folder.string(), "create", "a new folder", ec ? ec.message() : "it exists");
  sessions_[s->id] = s;
  return info_locked(*s);
}

ChunkWriter UploadStore::begin_chunk(const std::string& id, uint64_t start,
                                     std::optional<uint64_t> length) {
  std::shared_ptr<UploadSession> s;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    s = find_locked(id);
    if (s->busy)
      throw UploadConflict(id, "one request at a time", "another request is still sending");
    if (s->complete) throw UploadConflict(id, "an incomplete upload", "it is complete");
    if (start != s->received)
      throw UploadConflict(id, "the next chunk to start at byte " + std::to_string(s->received),
                           "byte " + std::to_string(start));
    if (length && s->size && start + *length > *s->size)
      throw UploadConflict(id, "chunks within the announced " + std::to_string(*s->size) + " bytes",
                           "bytes up to " + std::to_string(start + *length));
    if (length && start + *length > options_.max_bytes)
      throw UploadTooLarge(s->name, options_.max_bytes, std::to_string(start + *length) + " bytes");
    s->busy = true;
    s->touched = Clock::now();
  }
  return ChunkWriter(this, std::move(s), length);
}

UploadInfo UploadStore::get(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return info_locked(*find_locked(id));
}

std::vector<UploadInfo> UploadStore::list() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<UploadInfo> out;
  for (const auto& [id, s] : sessions_) out.push_back(info_locked(*s));
  return out;
}

void UploadStore::remove(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::shared_ptr<UploadSession> s = find_locked(id);
  if (s->busy) throw UploadConflict(id, "no request sending", "a request is still sending");
  if (s->leases > 0) throw UploadConflict(id, "no job using it", "a convert job is using it");
  erase_locked(id);
}

std::shared_ptr<UploadLease> UploadStore::lease(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::shared_ptr<UploadSession> s = find_locked(id);
  if (!s->complete)
    throw UploadConflict(id, "a complete upload",
                         std::to_string(s->received) + " of " +
                             (s->size ? std::to_string(*s->size) : std::string("?")) +
                             " bytes received");
  ++s->leases;
  s->touched = Clock::now();
  return std::shared_ptr<UploadLease>(new UploadLease(this, s, info_locked(*s)));
}

void UploadStore::purge_expired() {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto now = Clock::now();
  std::vector<std::string> expired;
  for (const auto& [id, s] : sessions_) {
    if (s->busy || s->leases > 0) continue;
    const auto ttl = s->complete ? options_.done_ttl : options_.idle_ttl;
    if (now - s->touched > ttl) expired.push_back(id);
  }
  for (const std::string& id : expired) erase_locked(id);
}

}  // namespace sdc::server::transfer
