// ActivationArena: activation memory shared by plans that never run at the same time (one
// pipeline's text encoder, UNet, ControlNet, VAE and TAESD). A plan needs its liveness-planned
// bytes only while it runs, so plans compiled against one arena cost the largest plan's bytes
// instead of their sum. The arena reserves address space once and commits more of it as larger
// plans ask, so its base never moves and every plan compiled earlier keeps valid pointers.
#pragma once

#include <atomic>
#include <cstddef>

namespace sdc::cpu {

class ActivationArena {
 public:
  // Reserves `reserve_bytes` of address space (nothing resident, nothing committed); a smaller
  // reservation is taken where the process's address-space limit refuses that one.
  explicit ActivationArena(size_t reserve_bytes = kDefaultReserve);
  ~ActivationArena();
  ActivationArena(const ActivationArena&) = delete;
  ActivationArena& operator=(const ActivationArena&) = delete;

  // The arena's base (64-byte aligned, stable) with at least `bytes` usable from it; nullptr when
  // `bytes` exceeds the reservation (the caller then allocates on its own). Not thread-safe: plans
  // are compiled and run by one thread at a time.
  void* acquire(size_t bytes);
  size_t committed() const { return committed_.load(std::memory_order_acquire); }
  size_t reserved() const { return reserved_; }

  // Makes up to `max_bytes` more of the committed pages resident (allocated and zeroed by the
  // kernel, contents of pages already resident untouched) and returns how many bytes it made
  // resident; 0 when all committed pages are. Safe from another thread while plans compile
  // (acquire) and while a plan uses the pages it covers.
  size_t populate(size_t max_bytes);

  static constexpr size_t kDefaultReserve = size_t(256) << 30;

 private:
  void* base_ = nullptr;
  size_t reserved_ = 0;
  std::atomic<size_t> committed_{0};
  std::atomic<size_t> populated_{0};  // resident through populate() (a prefix of committed_)
};

}  // namespace sdc::cpu
