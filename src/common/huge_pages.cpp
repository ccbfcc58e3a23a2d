// map_anonymous: over-map by one huge page, trim to 2 MiB alignment, advise huge pages.
#include "backend/cpu/huge_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

namespace sdc::cpu {

size_t round_to_pages(size_t bytes) {
  static const size_t page = size_t(sysconf(_SC_PAGESIZE));
  return (bytes + page - 1) / page * page;
}

void* map_anonymous(size_t bytes, int prot, int extra_flags, size_t* mapped_bytes) {
  const size_t length = round_to_pages(bytes == 0 ? 1 : bytes);
  const int flags = MAP_PRIVATE | MAP_ANONYMOUS | extra_flags;
  if (length < kHugePageBytes) {
    *mapped_bytes = length;
    return mmap(nullptr, length, prot, flags, -1, 0);
  }
  // A huge page needs a 2 MiB-aligned virtual range: take one huge page more and give back the
  // unaligned head and the tail.
  void* raw = mmap(nullptr, length + kHugePageBytes, prot, flags, -1, 0);
  if (raw == MAP_FAILED) return raw;
  const auto begin = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (begin + kHugePageBytes - 1) & ~uintptr_t(kHugePageBytes - 1);
  if (aligned > begin) munmap(raw, aligned - begin);
  const uintptr_t end = begin + length + kHugePageBytes;
  if (end > aligned + length)
    munmap(reinterpret_cast<void*>(aligned + length), end - aligned - length);
  void* p = reinterpret_cast<void*>(aligned);
  // Advice: a kernel without THP (or with it off) answers EINVAL and the pages stay 4 KiB.
  madvise(p, length, MADV_HUGEPAGE);
  *mapped_bytes = length;
  return p;
}

}  // namespace sdc::cpu
