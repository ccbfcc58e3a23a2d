// Mappings aligned for huge pages (2 MiB on x86-64). Anonymous mappings (packed weights, the
// activation arena) are 2 MiB-aligned but not advised MADV_HUGEPAGE: the system's THP policy
// decides. Advice made the first write of fresh memory 5-6x slower on a 2-core Zen 5 VM
// (Firecracker, free page reporting: 2 MiB pages the host had taken back cost ~2 s per GiB to fault
// in, 4 KiB pages ~0.37 s), which cost a one-image process 0.15-1.5 s of start-up, against ~1 % of
// step time from fewer TLB misses once resident. File mappings are advised (map_file_read_only):
// their pages are the page cache's, not fresh memory, and 2 MiB entries on them made mapped int8
// UNet steps faster.
#pragma once

#include <cstddef>

namespace sdc {

constexpr size_t kHugePageBytes = size_t(2) << 20;

// A private anonymous mapping of at least `bytes` (rounded to whole pages, *mapped_bytes set to
// the length to munmap) with protection `prot`, 2 MiB-aligned when it spans at least one huge
// page (so that THP "always" can back it with huge pages). MAP_FAILED when the system refuses
// (errno as mmap's).
void* map_anonymous(size_t bytes, int prot, int extra_flags, size_t* mapped_bytes);

// `bytes` of the file `fd` from its start, mapped read-only and private — at a 2 MiB-aligned
// address and advised MADV_HUGEPAGE when it spans at least one huge page, so that a file cached
// in 2 MiB folios maps with 2 MiB entries (see io/mapped_file.cpp). MAP_FAILED when the system
// refuses (errno as mmap's).
void* map_file_read_only(int fd, size_t bytes);

// Rounds `bytes` up to a multiple of the system page size.
size_t round_to_pages(size_t bytes);

}  // namespace sdc
