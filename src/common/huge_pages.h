// Anonymous mappings (and file mappings) that the kernel may back with transparent huge pages (2
// MiB on x86-64). Weights and activations are touched once per page when first written; on virtual
// machines a page fault is costly (a whole-process 512x512 image from a checkpoint spent ~2.7 s of
// its 15 s faulting in 4 KiB pages on a 2-core Zen 5 VM), and 2 MiB pages take 512 times fewer
// faults and TLB entries. Advice only: where THP is "never" the same mappings use 4 KiB pages.
#pragma once

#include <cstddef>

namespace sdc {

constexpr size_t kHugePageBytes = size_t(2) << 20;

// A private anonymous mapping of at least `bytes` (rounded to whole pages, *mapped_bytes set to
// the length to munmap) with protection `prot`, 2 MiB-aligned and advised MADV_HUGEPAGE when
// it spans at least one huge page. MAP_FAILED when the system refuses (errno as mmap's).
void* map_anonymous(size_t bytes, int prot, int extra_flags, size_t* mapped_bytes);

// `bytes` of the file `fd` from its start, mapped read-only and private — at a 2 MiB-aligned
// address and advised MADV_HUGEPAGE when it spans at least one huge page, so that a file cached
// in 2 MiB folios maps with 2 MiB entries (see io/mapped_file.cpp). MAP_FAILED when the system
// refuses (errno as mmap's).
void* map_file_read_only(int fd, size_t bytes);

// Rounds `bytes` up to a multiple of the system page size.
size_t round_to_pages(size_t bytes);

}  // namespace sdc
