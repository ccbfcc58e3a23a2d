// ArenaPrefault: makes the activation arenas' committed pages resident on a background thread
// while plans compile. oneDNN creates its primitives (JIT) on one thread, so during planning
// another core is idle; a plan's first run would otherwise take its new pages one fault at a time
// inside its parallel kernels, where every thread waits for the one that faults (on the 2-core VM
// of the README, where fresh memory arrives at ~0.6 GB/s, a 512x512 bf16 VAE decode's first run
// spent 0.4-1 s of its 3.5-4.6 s this way). The cost: the pages are resident from planning on,
// so a one-shot process whose decoder needs more activation memory than its UNet would peak
// higher (`sdc generate` plans its full VAE after the prefault: engine.cpp).
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace sdc::cpu {

class ActivationArena;

class ArenaPrefault {
 public:
  // Starts populating `arenas` (null entries skipped), following their commits as plans grow
  // them, until destroyed.
  explicit ArenaPrefault(std::vector<std::shared_ptr<ActivationArena>> arenas);
  // Stops after the chunk under way (a few MiB) and joins: the pages not yet populated arrive on
  // first touch as before.
  ~ArenaPrefault();
  ArenaPrefault(const ArenaPrefault&) = delete;
  ArenaPrefault& operator=(const ArenaPrefault&) = delete;

  size_t populated_bytes() const { return populated_.load(); }

 private:
  void run();

  std::vector<std::shared_ptr<ActivationArena>> arenas_;
  std::atomic<size_t> populated_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace sdc::cpu
