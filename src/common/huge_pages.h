// Mappings aligned for huge pages (2 MiB on x86-64), and whether anonymous ones are advised
// MADV_HUGEPAGE. File mappings always are (map_file_read_only): their pages are the page cache's,
// not fresh memory, and 2 MiB entries on them made mapped int8 UNet steps faster.
//
// Anonymous mappings (packed weights, the activation arena) are 2 MiB-aligned and advised only
// where a fresh huge page is measured to cost less than the 512 small pages it replaces
// (anonymous_huge_pages()). Which one wins depends on the host, not on the CPU: on two 2-core
// Zen 5 VMs (Firecracker, free page reporting) the first write of 1 GiB of fresh memory cost
// 2.2 s with huge pages on both, but 0.37 s with 4 KiB pages on one (2026-12-06: advice made a
// one-image process 0.15-1.5 s slower) and 3.6 s on the other, whose guest page faults trap to
// the hypervisor (2026-12-07: advice made it ~0.2 s faster, 43 k page faults -> 12 k).
#pragma once

#include <cstddef>
#include <string>

namespace sdc {

constexpr size_t kHugePageBytes = size_t(2) << 20;

// Whether anonymous mappings of a huge page or more are advised MADV_HUGEPAGE in this process,
// decided at the first call. SDC_HUGE_PAGES=advise|system forces advice or leaves it to the
// system's THP policy; unset or "auto": where the policy is "madvise", a probe times the first
// write of one fresh advised 2 MiB region against 64 fresh 4 KiB pages (~1-5 ms, once); under
// "always" or "never" advice changes nothing and is not given. Throws sdc::Error for another
// value of SDC_HUGE_PAGES.
struct HugePagePolicy {
  bool advise = false;
  std::string reason;  // one line for logs: what decided, with the probe's figures
};
const HugePagePolicy& anonymous_huge_pages();
// The decision for a value of SDC_HUGE_PAGES ("" as "auto"; "auto" probes now).
HugePagePolicy huge_page_policy(const std::string& setting);

// The probe's rule: advise when the advised 2 MiB region's first write (`huge_region_us`, all its
// pages) cost under 90 % of 512 small pages at `small_page_us` each (a margin for the probe's
// noise; once resident, huge pages are ~1 % faster still: fewer TLB misses).
bool huge_pages_pay_off(double huge_region_us, double small_page_us);

// A private anonymous mapping of at least `bytes` (rounded to whole pages, *mapped_bytes set to
// the length to munmap) with protection `prot`, 2 MiB-aligned when it spans at least one huge
// page (so that THP can back it with huge pages) and then advised as anonymous_huge_pages() says.
// MAP_FAILED when the system refuses (errno as mmap's).
void* map_anonymous(size_t bytes, int prot, int extra_flags, size_t* mapped_bytes);

// `bytes` of the file `fd` from its start, mapped read-only and private — at a 2 MiB-aligned
// address and advised MADV_HUGEPAGE when it spans at least one huge page, so that a file cached
// in 2 MiB folios maps with 2 MiB entries (see io/mapped_file.cpp). MAP_FAILED when the system
// refuses (errno as mmap's).
void* map_file_read_only(int fd, size_t bytes);

// Rounds `bytes` up to a multiple of the system page size.
size_t round_to_pages(size_t bytes);

}  // namespace sdc
