// mmap-based MappedFile. A mapping of 2 MiB or more starts on a 2 MiB boundary and is advised
// MADV_HUGEPAGE (map_file_read_only, common/huge_pages.h): where the kernel caches the file in
// 2 MiB folios (ext4 and others with large folios; files written by AtomicFile), such a mapping is
// served by 2 MiB page-table entries — one fault per 2 MiB at load and far fewer TLB misses while
// kernels stream packed weights (int8 UNet steps from a compiled file took 0.9-1.5 s with 4 KiB
// entries, 0.75-0.8 s with 2 MiB ones, on a 2-core Zen 5 VM). Reading the file cold, readahead then
// fills the cache in 2 MiB folios too. Advice only: elsewhere the mapping is an ordinary one.
#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"
#include "common/huge_pages.h"

namespace sdc::io {

std::shared_ptr<const MappedFile> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path, "", "a readable file", std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path, "", "a regular file", S_ISDIR(st.st_mode) ? "a directory" : "something else");
  }
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = size_t(st.st_size);
  if (f->size_ > 0) {
    void* p = map_file_read_only(fd, f->size_);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw Error(path, "", "a file that can be memory-mapped", std::strerror(e));
    }
    f->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return f;
}

void MappedFile::mark_file_backed(WeightMap& tensors) const {
  for (auto& [name, t] : tensors.all()) {
    const auto* p = static_cast<const uint8_t*>(t.data);
    if (data_ && p >= data_ && t.nbytes <= size_ && size_t(p - data_) <= size_ - t.nbytes)
      t.file_backed = true;
  }
}

MappedFile::~MappedFile() {
  if (data_) munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace sdc::io
