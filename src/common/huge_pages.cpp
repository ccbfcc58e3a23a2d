// map_anonymous and map_file_read_only: over-map by one huge page, trim to 2 MiB alignment;
// advise huge pages for file mappings.
#include "common/huge_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace sdc {

size_t round_to_pages(size_t bytes) {
  static const size_t page = size_t(sysconf(_SC_PAGESIZE));
  return (bytes + page - 1) / page * page;
}

namespace {
// A 2 MiB-aligned range of `length` bytes (whole pages) mapped with `prot` and `flags`: take one
// huge page more and give back the unaligned head and the tail.
void* map_aligned(size_t length, int prot, int flags) {
  void* raw = mmap(nullptr, length + kHugePageBytes, prot, flags, -1, 0);
  if (raw == MAP_FAILED) return raw;
  const auto begin = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (begin + kHugePageBytes - 1) & ~uintptr_t(kHugePageBytes - 1);
  if (aligned > begin) munmap(raw, aligned - begin);
  const uintptr_t end = begin + length + kHugePageBytes;
  if (end > aligned + length)
    munmap(reinterpret_cast<void*>(aligned + length), end - aligned - length);
  return reinterpret_cast<void*>(aligned);
}
}  // namespace

void* map_anonymous(size_t bytes, int prot, int extra_flags, size_t* mapped_bytes) {
  const size_t length = round_to_pages(bytes == 0 ? 1 : bytes);
  const int flags = MAP_PRIVATE | MAP_ANONYMOUS | extra_flags;
  *mapped_bytes = length;
  if (length < kHugePageBytes) return mmap(nullptr, length, prot, flags, -1, 0);
  return map_aligned(length, prot, flags);  // no MADV_HUGEPAGE: see huge_pages.h
}

void* map_file_read_only(int fd, size_t bytes) {
  if (bytes < kHugePageBytes) return mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  // Reserve the aligned range, then map the file over it (the same whole pages).
  const size_t length = round_to_pages(bytes);
  void* range = map_aligned(length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
  if (range == MAP_FAILED) return range;
  void* p = mmap(range, bytes, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
  if (p == MAP_FAILED) {
    const int e = errno;
    munmap(range, length);
    errno = e;
    return p;
  }
  // Advice: a kernel without THP (or with it off) answers EINVAL and the pages stay 4 KiB.
  madvise(p, bytes, MADV_HUGEPAGE);
  return p;
}

}  // namespace sdc
