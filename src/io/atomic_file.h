// AtomicFile: write a file so that it either appears whole or not at all. Data goes to a
// temporary file beside the target; commit() fsyncs and renames it into place. If the object is
// destroyed without commit() (an exception, a full disk), the temporary file is removed.
//
// Bytes reach the file in whole 8 MiB chunks at chunk-aligned offsets (the tail at commit()), so
// that a kernel with large page-cache folios may cache it in 2 MiB ones. A model file that the
// next process memory-maps is better still written with AfterCommit::DropCached: the cache
// forgets it once it is safely on disk, and the first mapping reads it back with 2 MiB readahead
// into 2 MiB folios (MappedFile) — served by 2 MiB page-table entries: one fault and one TLB
// entry per 2 MiB instead of 512. Cached as written, on a machine whose free memory is
// fragmented, part of a 3.3 GB model stayed in small folios (2.4 of 3.3 GB mapped with 2 MiB
// entries after a `convert` on a 2-core Zen 5 VM; 3.25 GB after reading it back).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sdc::io {

class AtomicFile {
 public:
  enum class AfterCommit { KeepCached, DropCached };
  // Throws sdc::Error if the folder is not writable.
  explicit AtomicFile(std::string target, AfterCommit after = AfterCommit::KeepCached);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Throws sdc::Error on a short write (ENOSPC ...) — here or, for the last bytes, in commit().
  void write(const void* data, size_t n);
  void write_zeros(size_t n);
  uint64_t offset() const { return offset_; }  // bytes accepted so far
  // Writes what is pending, fsync, (DropCached: drops the file's cached pages,) renames over the
  // target, fsyncs the folder.
  void commit();
  const std::string& target() const { return target_; }
  const std::string& temp_path() const { return temp_; }

 private:
  void write_through(const uint8_t* p, size_t n);  // straight to the file, all of it

  std::string target_, temp_;
  AfterCommit after_;
  int fd_ = -1;
  uint64_t offset_ = 0;
  std::vector<uint8_t> pending_;  // bytes of the current chunk not yet in the file
  bool committed_ = false;
};

// StagedFile: a hidden sibling path of `target` (created empty, unique) for output that is made
// in several passes — each may rewrite it atomically (AtomicFile) — and replaces `target` only at
// publish() (rename, then the folder fsynced). Destroyed unpublished, the staged file is removed,
// and whatever was at `target` stays as it was.
class StagedFile {
 public:
  // Throws sdc::Error if the folder is not writable.
  StagedFile(std::string target, const std::string& stage);
  ~StagedFile();
  StagedFile(const StagedFile&) = delete;
  StagedFile& operator=(const StagedFile&) = delete;

  const std::string& path() const { return path_; }
  void publish();

 private:
  std::string target_, path_;
  bool published_ = false;
};

}  // namespace sdc::io
