// UploadStore: files sent to the server (checkpoints of 2–7 GB) kept on disk until a convert job
// has used them. Bodies are streamed to disk chunk by chunk — never held in memory — and hashed
// (sha256) on the way. Two ways in:
//   - resumable: create(name, size) gives an id; the bytes then arrive in any number of requests,
//     each continuing exactly where the upload stands (`received`), so a dropped connection loses
//     nothing: the client asks how much arrived and sends the rest;
//   - single request: create(name, size, false) and one chunk; if that request breaks off, the
//     partial file is removed at once.
// A size above --max-upload-size is refused before a byte is written, and counted while bytes
// arrive when no size was declared. Incomplete uploads idle for `idle_ttl` and finished ones
// unused for `done_ttl` are removed; remove() (DELETE) aborts one now. Uploads held by a job
// (lease()) are never removed under it. Each upload lives in its own folder
// DIR/up-<32 hex>/ (".NAME.part" while incomplete, then NAME), so names never collide; folders of
// that pattern left by an earlier run are removed at start (sessions are in memory only).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"

namespace sdc::server::transfer {

struct UploadOptions {
  std::filesystem::path dir;                              // created if missing
  uint64_t max_bytes = uint64_t(16) << 30;                // --max-upload-size
  std::chrono::seconds idle_ttl{std::chrono::hours(1)};   // incomplete, no bytes for this long
  std::chrono::seconds done_ttl{std::chrono::hours(24)};  // complete, unused for this long
  size_t max_incomplete = 8;  // incomplete uploads at once (each may hold gigabytes)
};

struct UploadInfo {
  std::string id, name;
  std::optional<uint64_t> size;  // declared; unknown for a single request without a length
  uint64_t received = 0;
  bool complete = false;
  bool resumable = true;
  std::string sha256;  // when complete
  std::string path;    // the file, when complete
};

class UploadNotFound : public Error {  // 404
 public:
  explicit UploadNotFound(const std::string& id);
};
class UploadConflict : public Error {  // 409: wrong offset, another request writing, in use
 public:
  UploadConflict(const std::string& id, const std::string& expected, const std::string& found);
};
class UploadTooLarge : public Error {  // 413
 public:
  UploadTooLarge(const std::string& name, uint64_t max_bytes, const std::string& found);
};

class UploadStore;
struct UploadSession;

// One request's bytes appended to an upload. Destroyed without finish(): the request broke off —
// a resumable upload keeps the bytes that arrived, a single-request upload is removed.
class ChunkWriter {
 public:
  ChunkWriter(ChunkWriter&&) noexcept;
  ChunkWriter& operator=(ChunkWriter&&) = delete;
  ~ChunkWriter();
  // UploadTooLarge past the declared size / the cap (the upload is then removed if it was a
  // single request); sdc::Error when the disk refuses.
  void write(const char* data, size_t n);
  // The request's body ended: checks that the chunk had its announced length; completes the
  // upload (hash, rename) when all bytes are there.
  UploadInfo finish();

 private:
  friend class UploadStore;
  ChunkWriter(UploadStore* store, std::shared_ptr<UploadSession> s, std::optional<uint64_t> length);
  void abandon();
  UploadStore* store_;
  std::shared_ptr<UploadSession> s_;
  std::optional<uint64_t> length_;
  uint64_t written_ = 0;
  int fd_ = -1;
  bool done_ = false;
};

// A job's hold on a complete upload: its path stays valid until the lease is dropped.
class UploadLease {
 public:
  ~UploadLease();
  const std::string& path() const { return path_; }
  const UploadInfo& info() const { return info_; }

 private:
  friend class UploadStore;
  UploadLease(UploadStore* store, std::shared_ptr<UploadSession> s, UploadInfo info);
  UploadStore* store_;
  std::shared_ptr<UploadSession> s_;
  UploadInfo info_;
  std::string path_;
};

class UploadStore {
 public:
  explicit UploadStore(UploadOptions options);
  ~UploadStore();
  UploadStore(const UploadStore&) = delete;
  UploadStore& operator=(const UploadStore&) = delete;

  const UploadOptions& options() const { return options_; }

  // A new upload of `name` (sanitised). UploadTooLarge when `size` > max; UploadConflict when
  // max_incomplete uploads are under way.
  UploadInfo create(const std::string& name, std::optional<uint64_t> size, bool resumable = true);
  // Bytes [start, start+length) of upload `id`. UploadNotFound; UploadConflict when `start` is
  // not where the upload stands, when it is complete, or when another request is writing to it;
  // UploadTooLarge when start+length passes the declared size or the cap.
  ChunkWriter begin_chunk(const std::string& id, uint64_t start, std::optional<uint64_t> length);

  UploadInfo get(const std::string& id) const;  // UploadNotFound
  std::vector<UploadInfo> list() const;
  // Aborts or deletes an upload and its file. UploadNotFound; UploadConflict while a request is
  // writing to it or a job holds it.
  void remove(const std::string& id);
  // A hold on a complete upload for a job. UploadNotFound; UploadConflict when incomplete.
  std::shared_ptr<UploadLease> lease(const std::string& id);
  // Removes what has expired (also done on every create()).
  void purge_expired();

 private:
  friend class ChunkWriter;
  friend class UploadLease;
  std::shared_ptr<UploadSession> find_locked(const std::string& id) const;
  void erase_locked(const std::string& id);
  UploadInfo info_locked(const UploadSession& s) const;

  UploadOptions options_;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<UploadSession>> sessions_;
};

}  // namespace sdc::server::transfer
