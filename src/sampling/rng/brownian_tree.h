// The Brownian motion behind A1111's SDE samplers (DPM++ SDE, 2M SDE, 2M SDE Heun, 3M SDE):
// torchsde 0.2.6's BrownianTree (a BrownianInterval with halfway_tree=True, tol=1e-6,
// pool_size=24, no Levy area) driven as k-diffusion's BrownianTreeNoiseSampler, and seeded as
// A1111 seeds it.
//
// The motion W over [t0, t1] (W(t0) = 0) is a binary tree of intervals. The root increment is
// N_root * sqrt(t1 - t0). Splitting an interval [s, e] with increment W at its (rounded)
// midpoint m gives the left child
//     W_left = (m - s)/(e - s) * W + sqrt((m - s)(e - m)/(e - s)) * N,      W_right = W - W_left
// where N is a fresh float32 randn seeded by numpy SeedSequence(entropy, spawn_key=(key, depth),
// pool_size=24).generate_state(4)[0] (key = 2 key_parent + 0/1 down the tree; the root's
// SeedSequence(entropy, pool_size=24).generate_state(3)[0]). Every time is rounded to 6 decimals
// (Python's round); a query [ta, tb] splits intervals at their midpoints until [ta, tb] is a
// union of tree intervals, whose increments are summed. So W depends only on the seed, never on
// the order of the queries.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <span>
#include <vector>

namespace sdc::sampling {

// Fills `out` with standard normal float32 values from a fresh generator seeded with `seed`
// (A1111: torch.Generator("cpu").manual_seed(seed), or rng_philox.Generator(seed) for "NV").
using SeededRandn = std::function<void(uint64_t seed, std::span<float> out)>;

class BrownianTree {
 public:
  BrownianTree(size_t size, double t0, double t1, uint64_t entropy, SeededRandn randn);

  // W(tb) - W(ta) for t0 <= ta <= tb <= t1 (times outside are clamped to the interval, as
  // torchsde does after warning).
  std::vector<float> increment(double ta, double tb);

 private:
  struct Node {
    double start = 0, end = 0;
    int parent = -1;
    bool is_left = false;
    std::optional<double> midway;
    uint64_t spawn_key = 0;
    uint64_t depth = 0;
    uint32_t w_seed = 0;
    int left = -1, right = -1;
  };

  double round6(double t) const;
  void split_exact(int node, double midway);
  void split(int node, double midway, int guard);
  void locate(int node, double ta, double tb, std::vector<int>& out, int guard);
  const std::vector<float>& node_increment(int node);

  size_t size_;
  uint64_t entropy_;
  SeededRandn randn_;
  std::vector<Node> nodes_;
  int last_ = 0;
  // Increments of recently used nodes (torchsde keeps an LRU of 45; values are recomputed
  // identically from the parent when evicted). The root's is kept apart.
  std::vector<float> root_w_;
  std::vector<std::vector<float>> cache_;
  std::list<int> lru_;
};

// k-diffusion's BrownianTreeNoiseSampler over [sigma_min, sigma_max], one tree per image seed
// (A1111 passes the batch's seeds): noise(sigma, sigma_next) = (W(sigma_next) - W(sigma)) /
// sqrt(|sigma_next - sigma|), in float32, image b of the batch in the b-th equal slice of `out`.
class BrownianNoiseSampler {
 public:
  BrownianNoiseSampler(size_t per_image, float sigma_min, float sigma_max,
                       const std::vector<uint64_t>& seeds, const SeededRandn& randn);
  void operator()(float sigma, float sigma_next, std::span<float> out);

 private:
  size_t per_image_;
  std::vector<BrownianTree> trees_;
};

}  // namespace sdc::sampling
