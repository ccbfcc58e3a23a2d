// map_anonymous and map_file_read_only: over-map by one huge page, trim to 2 MiB alignment;
// advise huge pages for file mappings, and for anonymous ones where the probe says they pay.
#include "common/huge_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "common/error.h"

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

// The bracketed word of /sys/kernel/mm/transparent_hugepage/enabled ("" without THP).
std::string thp_mode() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  std::getline(in, line);
  const size_t open = line.find('['), close = line.find(']');
  return open == std::string::npos || close < open ? "" : line.substr(open + 1, close - open - 1);
}

double microseconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
}

// Writes one byte in each page of [p, p + bytes) and returns how long that took, in µs.
double first_writes_us(char* p, size_t bytes) {
  static const size_t page = round_to_pages(1);
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t at = 0; at < bytes; at += page) reinterpret_cast<volatile char*>(p)[at] = 1;
  return microseconds_since(t0);
}

HugePagePolicy probe_huge_pages() {
  const std::string mode = thp_mode();
  if (mode != "madvise")
    return {false, mode.empty() ? "no transparent huge pages here"
                                : "left to the system's transparent huge pages (\"" + mode + "\")"};
  const int flags = MAP_PRIVATE | MAP_ANONYMOUS;
  constexpr size_t kSmallPages = 64;
  const size_t small_bytes = kSmallPages * round_to_pages(1);
  void* small = mmap(nullptr, small_bytes, PROT_READ | PROT_WRITE, flags, -1, 0);
  void* huge = map_aligned(kHugePageBytes, PROT_READ | PROT_WRITE, flags);
  HugePagePolicy policy{false, "not advised: the probe's memory could not be mapped or advised"};
  if (small != MAP_FAILED && huge != MAP_FAILED &&
      madvise(huge, kHugePageBytes, MADV_HUGEPAGE) == 0) {
    const double small_us = first_writes_us(static_cast<char*>(small), small_bytes) / kSmallPages;
    const double huge_us = first_writes_us(static_cast<char*>(huge), kHugePageBytes);
    policy.advise = huge_pages_pay_off(huge_us, small_us);
    char line[160];
    std::snprintf(line, sizeof line,
                  "%s: a fresh 2 MiB region took %.0f us with huge pages, 512 fresh 4 KiB pages "
                  "%.0f us (%.2f us each)",
                  policy.advise ? "advised" : "not advised", huge_us, 512 * small_us, small_us);
    policy.reason = line;
  }
  if (small != MAP_FAILED) munmap(small, small_bytes);
  if (huge != MAP_FAILED) munmap(huge, kHugePageBytes);
  return policy;
}

}  // namespace

HugePagePolicy huge_page_policy(const std::string& v) {
  if (v == "advise") return {true, "advised (SDC_HUGE_PAGES=advise)"};
  if (v == "system") return {false, "left to the system (SDC_HUGE_PAGES=system)"};
  if (!v.empty() && v != "auto")
    throw Error("", "SDC_HUGE_PAGES", "auto, advise or system", "\"" + v + "\"");
  return probe_huge_pages();
}

bool huge_pages_pay_off(double huge_region_us, double small_page_us) {
  return huge_region_us < 0.9 * 512 * small_page_us;
}

const HugePagePolicy& anonymous_huge_pages() {
  static const HugePagePolicy policy = [] {
    const char* env = std::getenv("SDC_HUGE_PAGES");
    return huge_page_policy(env ? env : "");
  }();
  return policy;
}

void* map_anonymous(size_t bytes, int prot, int extra_flags, size_t* mapped_bytes) {
  const size_t length = round_to_pages(bytes == 0 ? 1 : bytes);
  const int flags = MAP_PRIVATE | MAP_ANONYMOUS | extra_flags;
  *mapped_bytes = length;
  if (length < kHugePageBytes) return mmap(nullptr, length, prot, flags, -1, 0);
  const bool advise = anonymous_huge_pages().advise;  // before mapping: it may throw
  void* p = map_aligned(length, prot, flags);
  // Advice only: a kernel that refuses it leaves 4 KiB pages.
  if (p != MAP_FAILED && advise) madvise(p, length, MADV_HUGEPAGE);
  return p;
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
