// Activation memory planning: buffers with [first, last] step lifetimes get offsets in one arena
// so that buffers alive at the same time never overlap (greedy best fit, largest first).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sdc::cpu {

struct BufferLife {
  size_t bytes = 0;
  int first = 0;  // step that writes it first
  int last = 0;   // last step that reads it (inclusive)
};

struct MemoryPlan {
  std::vector<size_t> offsets;  // per buffer, aligned to kArenaAlign
  size_t total = 0;             // arena size
};

constexpr size_t kArenaAlign = 64;

// v rounded up to kArenaAlign (a cache line): arena buffers, and the pieces kernels carve out of
// their scratch.
constexpr size_t arena_aligned(size_t v) {
  return (v + kArenaAlign - 1) / kArenaAlign * kArenaAlign;
}

MemoryPlan plan_memory(const std::vector<BufferLife>& buffers);

// Throws sdc::Error naming the two buffers when two with overlapping lifetimes overlap in memory
// or a buffer exceeds the arena (the planner's check mode; tests call it on every plan).
void check_memory_plan(const std::vector<BufferLife>& buffers, const MemoryPlan& plan);

}  // namespace sdc::cpu
