// ActivationArena: a PROT_NONE reservation made readable/writable in page-granular steps.
#include "backend/cpu/activation_arena.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <new>

#include "common/huge_pages.h"

namespace sdc::cpu {

namespace {
constexpr size_t kMinReserve = size_t(64) << 20;
}  // namespace

ActivationArena::ActivationArena(size_t reserve_bytes) {
  // Address space only: PROT_NONE pages are neither resident nor charged to the commit limit.
  // 2 MiB-aligned, so that where THP is "always" the pages committed later can be huge pages.
  for (size_t want = round_to_pages(reserve_bytes); want > 0;
       want = want > kMinReserve ? want / 4 : 0) {
    size_t mapped = 0;
    void* p = map_anonymous(want, PROT_NONE, MAP_NORESERVE, &mapped);
    if (p != MAP_FAILED) {
      base_ = p;
      reserved_ = mapped;
      return;
    }
  }
}

ActivationArena::~ActivationArena() {
  if (base_) munmap(base_, reserved_);
}

void* ActivationArena::acquire(size_t bytes) {
  const size_t need = round_to_pages(bytes == 0 ? 1 : bytes);
  if (!base_ || need > reserved_) return nullptr;
  const size_t committed = committed_.load(std::memory_order_relaxed);
  if (need > committed) {
    // Only the new pages change protection; committed ones keep their contents. Committed in
    // whole huge pages, so that the last one can be a huge page too (untouched pages of it cost
    // nothing where the kernel gives 4 KiB pages).
    const size_t grow_to =
        std::min(reserved_, (need + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes);
    auto* from = static_cast<char*>(base_) + committed;
    if (mprotect(from, grow_to - committed, PROT_READ | PROT_WRITE) != 0) throw std::bad_alloc();
    committed_.store(grow_to, std::memory_order_release);  // populate() may now touch them
  }
  return base_;
}

size_t ActivationArena::populate(size_t max_bytes) {
  const size_t from = populated_.load(std::memory_order_relaxed);
  const size_t to = std::min(committed(), from + round_to_pages(max_bytes));
  if (to <= from) return 0;
  // Each page is faulted in by a locked read-modify-write that adds nothing: a write fault that
  // keeps what a plan already wrote. Not MADV_POPULATE_WRITE: it holds the process's mmap lock
  // through the whole range, and the planner's mprotect calls (oneDNN's JIT code, arena commits)
  // queued behind it (512x512 int8 + TAESD planning: 91-99 -> 62-65 ms); a touch fault takes only
  // its mapping's lock.
  static const size_t page = round_to_pages(1);
  for (size_t at = from; at < to; at += page) {
    std::atomic_ref<char>(static_cast<char*>(base_)[at]).fetch_or(0, std::memory_order_relaxed);
  }
  populated_.store(to, std::memory_order_relaxed);
  return to - from;
}

}  // namespace sdc::cpu
