// ActivationArena: activation memory shared by plans that never run at the same time (one
// pipeline's text encoder, UNet, ControlNet, VAE and TAESD). A plan needs its liveness-planned
// bytes only while it runs, so plans compiled against one arena cost the largest plan's bytes
// instead of their sum. The arena reserves address space once and commits more of it as larger
// plans ask, so its base never moves and every plan compiled earlier keeps valid pointers.
#pragma once

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
  size_t committed() const { return committed_; }
  size_t reserved() const { return reserved_; }

  static constexpr size_t kDefaultReserve = size_t(256) << 30;

 private:
  void* base_ = nullptr;
  size_t reserved_ = 0, committed_ = 0;
};

}  // namespace sdc::cpu
