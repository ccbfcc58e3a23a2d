// Greedy offset assignment: place buffers in decreasing size order at the lowest offset that does
// not collide with an already placed buffer whose lifetime intersects. O(n^2) on a few thousand
// buffers, done once per plan.
#include "backend/cpu/memory_plan.h"

#include <algorithm>
#include <numeric>
#include <string>

#include "common/error.h"

namespace sdc::cpu {
namespace {
size_t align_up(size_t v) {
  return (v + kArenaAlign - 1) / kArenaAlign * kArenaAlign;
}
bool lives_overlap(const BufferLife& a, const BufferLife& b) {
  return a.first <= b.last && b.first <= a.last;
}
}  // namespace

MemoryPlan plan_memory(const std::vector<BufferLife>& buffers) {
  MemoryPlan plan;
  plan.offsets.assign(buffers.size(), 0);
  std::vector<size_t> order(buffers.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (buffers[a].bytes != buffers[b].bytes) return buffers[a].bytes > buffers[b].bytes;
    return buffers[a].first < buffers[b].first;
  });
  std::vector<size_t> placed;
  std::vector<std::pair<size_t, size_t>> busy;  // [begin, end) of conflicting placed buffers
  for (size_t i : order) {
    const size_t size = align_up(std::max<size_t>(buffers[i].bytes, 1));
    busy.clear();
    for (size_t j : placed)
      if (lives_overlap(buffers[i], buffers[j]))
        busy.emplace_back(plan.offsets[j],
                          plan.offsets[j] + align_up(std::max<size_t>(buffers[j].bytes, 1)));
    std::sort(busy.begin(), busy.end());
    // Best fit: the smallest gap that holds `size`; else after the last busy range.
    size_t best = SIZE_MAX, best_gap = SIZE_MAX, cursor = 0;
    for (const auto& [b, e] : busy) {
      if (b > cursor && b - cursor >= size && b - cursor < best_gap) {
        best = cursor;
        best_gap = b - cursor;
      }
      cursor = std::max(cursor, e);
    }
    if (best == SIZE_MAX) best = cursor;
    plan.offsets[i] = best;
    plan.total = std::max(plan.total, best + size);
    placed.push_back(i);
  }
  return plan;
}

void check_memory_plan(const std::vector<BufferLife>& buffers, const MemoryPlan& plan) {
  if (plan.offsets.size() != buffers.size())
    throw Error("memory plan", "offsets", std::to_string(buffers.size()),
                std::to_string(plan.offsets.size()));
  for (size_t i = 0; i < buffers.size(); ++i) {
    if (plan.offsets[i] % kArenaAlign != 0 || plan.offsets[i] + buffers[i].bytes > plan.total)
      throw Error("memory plan", "buffer " + std::to_string(i), "an aligned range inside the arena",
                  "offset " + std::to_string(plan.offsets[i]));
    for (size_t j = i + 1; j < buffers.size(); ++j) {
      if (!lives_overlap(buffers[i], buffers[j])) continue;
      const size_t bi = plan.offsets[i], ei = bi + buffers[i].bytes;
      const size_t bj = plan.offsets[j], ej = bj + buffers[j].bytes;
      if (bi < ej && bj < ei && buffers[i].bytes && buffers[j].bytes)
        throw Error("memory plan", "buffers " + std::to_string(i) + " and " + std::to_string(j),
                    "disjoint memory while both are live",
                    "overlap at offsets " + std::to_string(bi) + " and " + std::to_string(bj));
    }
  }
}

}  // namespace sdc::cpu
