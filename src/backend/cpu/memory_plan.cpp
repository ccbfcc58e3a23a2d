// Greedy offset assignment: place buffers one by one at the best-fitting gap that does not collide
// with an already placed buffer whose lifetime intersects; several placement orders are tried.
// O(n^2) per order on a few thousand buffers, done once per plan.
#include "backend/cpu/memory_plan.h"

#include <algorithm>
#include <numeric>
#include <string>

#include "common/error.h"

namespace sdc::cpu {
namespace {
bool lives_overlap(const BufferLife& a, const BufferLife& b) {
  return a.first <= b.last && b.first <= a.last;
}

// Places buffers in `order`, each at the lowest-waste gap among the placed buffers it lives with.
MemoryPlan place(const std::vector<BufferLife>& buffers, const std::vector<size_t>& order) {
  MemoryPlan plan;
  plan.offsets.assign(buffers.size(), 0);
  std::vector<size_t> placed;
  std::vector<std::pair<size_t, size_t>> busy;  // [begin, end) of conflicting placed buffers
  for (size_t i : order) {
    const size_t size = arena_aligned(std::max<size_t>(buffers[i].bytes, 1));
    busy.clear();
    for (size_t j : placed)
      if (lives_overlap(buffers[i], buffers[j]))
        busy.emplace_back(plan.offsets[j],
                          plan.offsets[j] + arena_aligned(std::max<size_t>(buffers[j].bytes, 1)));
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

}  // namespace

// Greedy placement is order-sensitive: try a few classic orders and keep the smallest arena.
MemoryPlan plan_memory(const std::vector<BufferLife>& buffers) {
  std::vector<size_t> order(buffers.size());
  std::iota(order.begin(), order.end(), size_t(0));
  auto by = [&](auto key) {
    std::vector<size_t> o = order;
    std::stable_sort(o.begin(), o.end(), [&](size_t a, size_t b) { return key(a, b); });
    return o;
  };
  const std::vector<size_t> orders[] = {
      by([&](size_t a, size_t b) { return buffers[a].bytes > buffers[b].bytes; }),
      by([&](size_t a, size_t b) {
        const double ea = double(buffers[a].bytes) * (buffers[a].last - buffers[a].first + 1);
        const double eb = double(buffers[b].bytes) * (buffers[b].last - buffers[b].first + 1);
        return ea > eb;
      }),
      by([&](size_t a, size_t b) {
        return buffers[a].last - buffers[a].first > buffers[b].last - buffers[b].first;
      }),
      order,  // first use (buffers come in step order)
  };
  MemoryPlan best;
  best.total = SIZE_MAX;
  for (const auto& o : orders) {
    MemoryPlan p = place(buffers, o);
    if (p.total < best.total) best = std::move(p);
  }
  if (buffers.empty()) best.total = 0;
  return best;
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
