// AtomicFile: write a file so that it either appears whole or not at all. Data goes to a
// temporary file beside the target; commit() fsyncs and renames it into place. If the object is
// destroyed without commit() (an exception, a full disk), the temporary file is removed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace sdc::io {

class AtomicFile {
 public:
  explicit AtomicFile(std::string target);  // throws sdc::Error if the folder is not writable
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);  // throws sdc::Error on a short write (ENOSPC ...)
  void write_zeros(size_t n);
  uint64_t offset() const { return offset_; }
  void commit();  // fsync, rename over the target, fsync the folder
  const std::string& target() const { return target_; }
  const std::string& temp_path() const { return temp_; }

 private:
  std::string target_, temp_;
  int fd_ = -1;
  uint64_t offset_ = 0;
  bool committed_ = false;
};

}  // namespace sdc::io
