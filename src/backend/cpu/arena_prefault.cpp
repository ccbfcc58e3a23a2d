// ArenaPrefault: a thread that populates arenas in small chunks and polls for growth.
#include "backend/cpu/arena_prefault.h"

#include <chrono>

#include "backend/cpu/activation_arena.h"

namespace sdc::cpu {

namespace {
// Small enough that stopping waits at most a few milliseconds, large enough to be one call per
// thousand pages.
constexpr size_t kChunk = size_t(4) << 20;
// How often an idle prefaulter looks for a plan's new commit: plans take tens of milliseconds
// to compile.
constexpr auto kPoll = std::chrono::milliseconds(2);
}  // namespace

ArenaPrefault::ArenaPrefault(std::vector<std::shared_ptr<ActivationArena>> arenas)
    : arenas_(std::move(arenas)) {
  std::erase(arenas_, nullptr);
  if (!arenas_.empty()) thread_ = std::thread([this] { run(); });
}

ArenaPrefault::~ArenaPrefault() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ArenaPrefault::run() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    size_t done = 0;
    lock.unlock();
    for (const auto& arena : arenas_) done += arena->populate(kChunk);
    populated_ += done;
    lock.lock();
    if (done == 0) wake_.wait_for(lock, kPoll, [this] { return stop_; });
  }
}

}  // namespace sdc::cpu
