// Whole-network profile of the CPU backend on SD1.5-shaped graphs with random weights: the UNet
// (diffusers UNet2DConditionModel layout: 320/640/1280/1280 channels, 2 resnets + 2 transformers
// per down level, 3 per up level, 8 heads, 768-d context) and the VAE decoder (512/512/256/128).
// These graphs are built here only to profile the backend; the real builders live in graph/.
//   sdc_bench_network [unet|vae] [f32|bf16] [latent size=64] [batch=1] [runs=2]
// Prints the time per step kind (wall and CPU seconds) and the GFLOP/s of the whole run.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <random>
#include <string>

#include "backend/cpu/plan.h"
#include "backend/cpu/weight_cache.h"
#include "common/tensor.h"
#include "graph/graph.h"

namespace {

using sdc::DType;
using sdc::Shape;
using sdc::TensorRef;
namespace graph = sdc::graph;
using graph::ValueId;

class Net {
 public:
  graph::Graph g;
  const std::vector<TensorRef>* reuse = nullptr;  // weights of an earlier net, in creation order
  size_t next = 0;

  ValueId w(Shape s, float scale = 0.05f) {
    if (reuse && next < reuse->size()) return g.weight("w", (*reuse)[next++]);
    std::vector<float> v(static_cast<size_t>(sdc::shape_numel(s)));
    std::uniform_real_distribution<float> d(-scale, scale);
    for (float& x : v) x = d(rng_);
    return g.weight("w", TensorRef::from_f32(v, s, DType::F16));
  }
  ValueId ones(int64_t c) {
    if (reuse && next < reuse->size()) return g.weight("g", (*reuse)[next++]);
    return g.weight("g", TensorRef::from_f32(std::vector<float>(size_t(c), 1.f), {c}, DType::F16));
  }
  ValueId conv(ValueId x, int64_t co, int k = 3, int stride = 1) {
    const int64_t ci = g.shape(x).back();
    const int pad = k / 2;
    if (stride == 2) return g.conv2d(x, w({co, ci, k, k}), w({co}), 2, 0, 0, 1, 1);
    return g.conv2d(x, w({co, ci, k, k}), w({co}), stride, pad);
  }
  ValueId linear(ValueId x, int64_t co, bool bias = true) {
    return g.linear(x, w({co, g.shape(x).back()}), bias ? w({co}) : graph::kNone);
  }
  ValueId gn(ValueId x, bool silu, float eps = 1e-5f) {
    const int64_t c = g.shape(x).back();
    return g.group_norm(x, ones(c), w({c}), 32, eps, silu);
  }
  ValueId resnet(ValueId x, int64_t co, ValueId temb_act) {
    ValueId h = conv(gn(x, true), co);
    if (temb_act != graph::kNone) h = g.add(h, linear(temb_act, co));
    h = conv(gn(h, true), co);
    const ValueId skip = g.shape(x).back() == co ? x : conv(x, co, 1);
    return g.add(skip, h);
  }
  ValueId attention_block(ValueId x, ValueId ctx, int heads) {
    const int64_t c = g.shape(x).back();
    ValueId q = linear(x, c, false);
    const ValueId src = ctx == graph::kNone ? x : ctx;
    ValueId k = linear(src, c, false), v = linear(src, c, false);
    return linear(g.attention(q, k, v, heads, false), c);
  }
  ValueId layer_norm(ValueId x) {
    const int64_t c = g.shape(x).back();
    return g.layer_norm(x, ones(c), w({c}), 1e-5f);
  }
  ValueId transformer(ValueId x, ValueId ctx) {
    const Shape s = g.shape(x);
    const int64_t n = s[0], hw = s[1] * s[2], c = s[3];
    ValueId h = g.reshape(gn(x, false, 1e-6f), {n, hw, c});
    h = linear(h, c);
    h = g.add(attention_block(layer_norm(h), graph::kNone, 8), h);
    h = g.add(attention_block(layer_norm(h), ctx, 8), h);
    h = g.add(linear(g.geglu(linear(layer_norm(h), 8 * c)), c), h);
    h = linear(h, c);
    return g.add(g.reshape(h, s), x);
  }

 private:
  std::mt19937 rng_{7};
};

graph::Graph unet(int64_t batch, int64_t latent, const std::vector<TensorRef>* reuse = nullptr) {
  Net m;
  m.reuse = reuse;
  auto& g = m.g;
  const ValueId x = g.input("sample", {batch, latent, latent, 4});
  const ValueId t = g.input("timestep", {batch});
  const ValueId ctx = g.input("context", {batch, 77, 768});
  ValueId temb = m.linear(g.silu(m.linear(g.timestep_embedding(t, 320, true, 0.f), 1280)), 1280);
  const ValueId temb_act = g.silu(temb);
  ValueId h = m.conv(x, 320);
  std::vector<ValueId> skips = {h};
  const int64_t ch[4] = {320, 640, 1280, 1280};
  for (int level = 0; level < 4; ++level) {
    for (int i = 0; i < 2; ++i) {
      h = m.resnet(h, ch[level], temb_act);
      if (level < 3) h = m.transformer(h, ctx);
      skips.push_back(h);
    }
    if (level < 3) {
      h = m.conv(h, ch[level], 3, 2);
      skips.push_back(h);
    }
  }
  h = m.resnet(h, 1280, temb_act);
  h = m.transformer(h, ctx);
  h = m.resnet(h, 1280, temb_act);
  const int64_t up_ch[4] = {1280, 1280, 640, 320};
  for (int level = 0; level < 4; ++level) {
    for (int i = 0; i < 3; ++i) {
      h = g.concat(h, skips.back());
      skips.pop_back();
      h = m.resnet(h, up_ch[level], temb_act);
      if (level > 0) h = m.transformer(h, ctx);
    }
    if (level < 3) {
      const Shape s = g.shape(h);
      h = m.conv(g.upsample_nearest(h, int(s[1] * 2), int(s[2] * 2)), up_ch[level]);
    }
  }
  g.output("out", m.conv(m.gn(h, true), 4));
  return std::move(m.g);
}

graph::Graph vae_decoder(int64_t batch, int64_t latent,
                         const std::vector<TensorRef>* reuse = nullptr) {
  Net m;
  m.reuse = reuse;
  auto& g = m.g;
  const ValueId z = g.input("latent", {batch, latent, latent, 4});
  ValueId h = m.conv(m.conv(z, 4, 1), 512);
  h = m.resnet(h, 512, graph::kNone);
  {  // mid attention: one head over 512 channels
    const Shape s = g.shape(h);
    const ValueId n = g.reshape(m.gn(h, false, 1e-6f), {s[0], s[1] * s[2], 512});
    const ValueId a = g.attention(m.linear(n, 512), m.linear(n, 512), m.linear(n, 512), 1, false);
    h = g.add(g.reshape(m.linear(a, 512), s), h);
  }
  h = m.resnet(h, 512, graph::kNone);
  const int64_t ch[4] = {512, 512, 256, 128};
  for (int level = 0; level < 4; ++level) {
    for (int i = 0; i < 3; ++i) h = m.resnet(h, ch[level], graph::kNone);
    if (level < 3) {
      const Shape s = g.shape(h);
      h = m.conv(g.upsample_nearest(h, int(s[1] * 2), int(s[2] * 2)), ch[level]);
    }
  }
  g.output("image", m.conv(m.gn(h, true), 3));
  return std::move(m.g);
}

double cpu_now() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string net = argc > 1 ? argv[1] : "unet";
  sdc::cpu::PlanOptions o;
  o.precision = sdc::cpu::parse_precision(argc > 2 ? argv[2] : "auto");
  o.bf16_residuals = net != "vae";  // as generation plans the UNet (pipeline::denoiser_options)
  const int64_t latent = argc > 3 ? std::atoll(argv[3]) : 64;
  const int64_t batch = argc > 4 ? std::atoll(argv[4]) : 1;
  const int runs = argc > 5 ? std::atoi(argv[5]) : 2;
  const graph::Graph g = net == "vae" ? vae_decoder(batch, latent) : unet(batch, latent);
  auto t0 = std::chrono::steady_clock::now();
  auto plan = sdc::cpu::Plan::compile(g, o);
  const double compile_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& [name, v] : g.inputs()) {
    float* p = plan->input_f32(name);
    for (int64_t i = 0; i < sdc::shape_numel(g.shape(v)); ++i)
      p[i] = float((i * 7919) % 1000) / 1000.f - 0.5f;
  }
  std::printf(
      "%s %s latent %lld batch %lld: %zu steps, arena %.1f MiB, weights %.1f MiB, scratch %.1f "
      "MiB, compile %.2f s\n",
      net.c_str(), sdc::cpu::precision_name(o.precision), (long long)latent, (long long)batch,
      plan->steps().size(), double(plan->arena_bytes()) / 1048576.0,
      double(plan->weight_bytes()) / 1048576.0, double(plan->scratch_bytes()) / 1048576.0,
      compile_s);
  if (const char* second = std::getenv("SDC_BENCH_SECOND_SIZE")) {
    // A second plan of the same weights at another size: how much packed weight it shares.
    const int64_t l2 = std::atoll(second);
    const size_t before = sdc::cpu::WeightCache::global().live_entries();
    std::vector<TensorRef> same;
    for (const auto& n : g.nodes())
      if (n.op == graph::Op::Weight) same.push_back(n.weight);
    const graph::Graph g2 = net == "vae" ? vae_decoder(batch, l2, &same) : unet(batch, l2, &same);
    auto plan2 = sdc::cpu::Plan::compile(g2, o);
    std::printf("second plan at latent %lld: %zu new packed weights (of %zu tensors)\n",
                (long long)l2, sdc::cpu::WeightCache::global().live_entries() - before,
                same.size());
  }
  plan->run();                                           // warm-up
  std::map<std::string, std::array<double, 3>> by_kind;  // wall, cpu, macs
  double wall = 0, cpu = 0;
  std::vector<sdc::cpu::StepInfo> last;
  for (int r = 0; r < runs; ++r) {
    const double c0 = cpu_now();
    t0 = std::chrono::steady_clock::now();
    last = plan->profile_run();
    for (const auto& s : last) {
      auto& k = by_kind[s.kind];
      k[0] += s.seconds;
      k[1] += s.cpu_seconds;
      k[2] += double(s.macs);
    }
    wall += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    cpu += cpu_now() - c0;
  }
  std::printf("%-28s %10s %10s %12s\n", "step kind", "wall ms", "cpu ms", "GFLOP/cpu-s");
  for (const auto& [kind, k] : by_kind)
    std::printf("%-28s %10.1f %10.1f %12.1f\n", kind.c_str(), 1e3 * k[0] / runs, 1e3 * k[1] / runs,
                k[2] > 0 ? 2 * k[2] * 1e-9 / k[1] : 0.0);
  if (std::getenv("SDC_BENCH_TOP")) {  // the slowest steps of the last run
    std::vector<size_t> idx(last.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::sort(idx.begin(), idx.end(),
              [&](size_t a, size_t b) { return last[a].cpu_seconds > last[b].cpu_seconds; });
    for (size_t k = 0; k < std::min<size_t>(25, idx.size()); ++k) {
      const auto& s = last[idx[k]];
      std::printf("  step %4zu %-24s %8.1f cpu-ms %8.1f GFLOP/cpu-s %10.3f GFLOP\n", idx[k],
                  s.kind.c_str(), 1e3 * s.cpu_seconds,
                  s.macs ? 2e-9 * double(s.macs) / s.cpu_seconds : 0.0, 2e-9 * double(s.macs));
    }
  }
  const double flops = 2.0 * double(g.macs());
  std::printf("per run: wall %.3f s (%.1f GFLOP/s), cpu %.3f s (%.1f GFLOP/cpu-s), %.1f GFLOP\n",
              wall / runs, flops * 1e-9 * runs / wall, cpu / runs, flops * 1e-9 * runs / cpu,
              flops * 1e-9);
  return 0;
}
