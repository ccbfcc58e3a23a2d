// ActivationArena: a PROT_NONE reservation made readable/writable in page-granular steps.
#include "backend/cpu/activation_arena.h"

#include <sys/mman.h>
#include <unistd.h>

#include <new>

namespace sdc::cpu {

namespace {
constexpr size_t kMinReserve = size_t(64) << 20;

size_t page_round(size_t bytes) {
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  return (bytes + page - 1) / page * page;
}
}  // namespace

ActivationArena::ActivationArena(size_t reserve_bytes) {
  // Address space only: PROT_NONE pages are neither resident nor charged to the commit limit.
  for (size_t want = page_round(reserve_bytes); want > 0;
       want = want > kMinReserve ? want / 4 : 0) {
    void* p = mmap(nullptr, want, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED) {
      base_ = p;
      reserved_ = want;
      return;
    }
  }
}

ActivationArena::~ActivationArena() {
  if (base_) munmap(base_, reserved_);
}

void* ActivationArena::acquire(size_t bytes) {
  const size_t need = page_round(bytes == 0 ? 1 : bytes);
  if (!base_ || need > reserved_) return nullptr;
  if (need > committed_) {
    // Only the new pages change protection; committed ones keep their contents.
    auto* from = static_cast<char*>(base_) + committed_;
    if (mprotect(from, need - committed_, PROT_READ | PROT_WRITE) != 0) throw std::bad_alloc();
    committed_ = need;
  }
  return base_;
}

}  // namespace sdc::cpu
