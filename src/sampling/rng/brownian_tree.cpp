// torchsde's Brownian tree as A1111 drives it; see brownian_tree.h.

#include "common/strict_float.h"  // first: PyTorch rounding, no fused multiply-add

#include "sampling/rng/brownian_tree.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.h"
#include "sampling/rng/seed_sequence.h"
#include "sampling/torch_float.h"

namespace sdc::sampling {
namespace {

constexpr int kPoolSize = 24;
constexpr int kDecimals = 6;  // tol 1e-6
constexpr size_t kCacheSize = 45;
constexpr int kMaxDepth = 200;  // far beyond what 6 decimals allow; guards against a loop

}  // namespace

BrownianTree::BrownianTree(size_t size, double t0, double t1, uint64_t entropy, SeededRandn randn)
    : size_(size), entropy_(entropy), randn_(std::move(randn)) {
  if (!(t0 < t1))
    throw Error("", "Brownian tree interval", "t0 < t1",
                std::to_string(t0) + " >= " + std::to_string(t1));
  Node root;
  root.start = round6(t0);
  root.end = round6(t1);
  nodes_.push_back(root);
  const std::vector<uint32_t> seeds = SeedSequence(entropy_, {}, kPoolSize).generate_state(3);
  root_w_.resize(size_);
  randn_(seeds[0], root_w_);
  // The unrounded interval length scales the root, as torchsde computes it.
  const float scale = static_cast<float>(std::sqrt(t1 - t0));
  for (float& v : root_w_) v = v * scale;
}

double BrownianTree::round6(double t) const {
  return python_round(t, kDecimals);
}

void BrownianTree::split_exact(int index, double midway) {
  Node& node = nodes_[static_cast<size_t>(index)];
  node.midway = round6(midway);
  if (node.parent >= 0) {
    const Node& parent = nodes_[static_cast<size_t>(node.parent)];
    node.spawn_key = 2 * parent.spawn_key + (node.is_left ? 0 : 1);
    node.depth = parent.depth + 1;
  }
  node.w_seed =
      SeedSequence(entropy_, {node.spawn_key, node.depth}, kPoolSize).generate_state(4)[0];
  Node left, right;
  left.start = node.start;
  left.end = round6(midway);
  left.parent = right.parent = index;
  left.is_left = true;
  right.start = round6(midway);
  right.end = node.end;
  const int li = static_cast<int>(nodes_.size());
  nodes_.push_back(left);  // invalidates `node`
  nodes_.push_back(right);
  nodes_[static_cast<size_t>(index)].left = li;
  nodes_[static_cast<size_t>(index)].right = li + 1;
  cache_.resize(nodes_.size());
}

// halfway_tree: always split at the midpoint, then keep splitting the child holding `midway`
// until it is a boundary.
void BrownianTree::split(int index, double midway, int guard) {
  if (guard > kMaxDepth)
    throw Error("", "Brownian tree", "a query resolvable to 6 decimals", std::to_string(midway));
  const Node& node = nodes_[static_cast<size_t>(index)];
  split_exact(index, 0.5 * (node.end + node.start));
  const Node& n = nodes_[static_cast<size_t>(index)];
  if (midway > *n.midway)
    split(n.right, midway, guard + 1);
  else if (midway < *n.midway)
    split(n.left, midway, guard + 1);
}

void BrownianTree::locate(int index, double ta, double tb, std::vector<int>& out, int guard) {
  if (guard > 4 * kMaxDepth)
    throw Error("", "Brownian tree", "a query resolvable to 6 decimals",
                std::to_string(ta) + ".." + std::to_string(tb));
  const Node node = nodes_[static_cast<size_t>(index)];
  if (ta < node.start || tb > node.end) return locate(node.parent, ta, tb, out, guard + 1);
  if (ta == node.start && tb == node.end) {
    out.push_back(index);
    return;
  }
  if (!node.midway) {
    if (ta == node.start) {
      split(index, tb, 0);
      return locate(nodes_[static_cast<size_t>(index)].left, ta, tb, out, guard + 1);
    }
    split(index, ta, 0);
    return locate(nodes_[static_cast<size_t>(index)].right, ta, tb, out, guard + 1);
  }
  const double mid = *node.midway;
  if (tb <= mid) return locate(node.left, ta, tb, out, guard + 1);
  if (ta >= mid) return locate(node.right, ta, tb, out, guard + 1);
  locate(node.left, ta, mid, out, guard + 1);
  locate(node.right, mid, tb, out, guard + 1);
}

const std::vector<float>& BrownianTree::node_increment(int index) {
  if (index == 0) return root_w_;
  std::vector<float>& cached = cache_[static_cast<size_t>(index)];
  if (!cached.empty()) {
    lru_.remove(index);
    lru_.push_back(index);
    return cached;
  }
  const Node node = nodes_[static_cast<size_t>(index)];
  const Node parent = nodes_[static_cast<size_t>(node.parent)];
  std::vector<float> w = node_increment(node.parent);  // copy: the cache may evict it below
  const double h_reciprocal = 1.0 / (parent.end - parent.start);
  const double left_diff = *parent.midway - parent.start;
  const double right_diff = parent.end - *parent.midway;
  const float c_mean = static_cast<float>(left_diff), c_h = static_cast<float>(h_reciprocal);
  const float c_std = static_cast<float>(std::sqrt(left_diff * right_diff * h_reciprocal));
  std::vector<float> noise(size_);
  randn_(parent.w_seed, noise);
  std::vector<float> out(size_);
  for (size_t i = 0; i < size_; ++i) {
    const float left_w = c_mean * w[i] * c_h + c_std * noise[i];
    out[i] = node.is_left ? left_w : w[i] - left_w;
  }
  if (lru_.size() >= kCacheSize) {
    cache_[static_cast<size_t>(lru_.front())].clear();
    cache_[static_cast<size_t>(lru_.front())].shrink_to_fit();
    lru_.pop_front();
  }
  lru_.push_back(index);
  cached = std::move(out);
  return cached;
}

std::vector<float> BrownianTree::increment(double ta, double tb) {
  const Node& root = nodes_[0];
  ta = std::clamp(ta, root.start, root.end);
  tb = std::clamp(tb, root.start, root.end);
  if (ta > tb)
    throw Error("", "Brownian tree query", "ta <= tb",
                std::to_string(ta) + " > " + std::to_string(tb));
  ta = round6(ta);
  tb = round6(tb);
  std::vector<float> w(size_, 0.0f);
  if (ta == tb) return w;  // an empty interval at 6 decimals
  std::vector<int> intervals;
  locate(last_, ta, tb, intervals, 0);
  last_ = intervals.back();
  w = node_increment(intervals[0]);
  for (size_t k = 1; k < intervals.size(); ++k) {
    const std::vector<float>& wi = node_increment(intervals[k]);
    for (size_t i = 0; i < size_; ++i) w[i] = w[i] + wi[i];
  }
  return w;
}

BrownianNoiseSampler::BrownianNoiseSampler(size_t per_image, float sigma_min, float sigma_max,
                                           const std::vector<uint64_t>& seeds,
                                           const SeededRandn& randn)
    : per_image_(per_image) {
  for (uint64_t seed : seeds) trees_.emplace_back(per_image, sigma_min, sigma_max, seed, randn);
}

void BrownianNoiseSampler::operator()(float sigma, float sigma_next, std::span<float> out) {
  if (out.size() != per_image_ * trees_.size())
    throw Error("", "Brownian noise", std::to_string(per_image_ * trees_.size()) + " values",
                std::to_string(out.size()));
  const bool ascending = sigma < sigma_next;
  const float lo = ascending ? sigma : sigma_next, hi = ascending ? sigma_next : sigma;
  float denom = std::fabs(sigma_next - sigma);
  denom = std::sqrt(denom);
  for (size_t b = 0; b < trees_.size(); ++b) {
    const std::vector<float> w = trees_[b].increment(lo, hi);
    float* dst = out.data() + b * per_image_;
    for (size_t i = 0; i < per_image_; ++i) dst[i] = (ascending ? w[i] : -w[i]) / denom;
  }
}

}  // namespace sdc::sampling
