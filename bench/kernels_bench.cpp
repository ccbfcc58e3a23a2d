// Micro-benchmarks at the sizes that dominate SD1.5 at 512x512: UNet conv 3x3 320->320 on 64x64,
// self-attention over 4096 tokens x 320 channels x 8 heads, the feed-forward linear, and VAE
// decoder GroupNorm over 512 channels x 256x256 (plus its conv). Each is a one-op graph compiled
// by the real planner, in f32 and bf16 (attention and the 3x3 convolution also int8).
#include <benchmark/benchmark.h>

#include <ctime>
#include <random>

#include "backend/cpu/int8_gemm.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/plan.h"
#include "common/tensor.h"
#include "graph/graph.h"

namespace {

using sdc::DType;
using sdc::Shape;
using sdc::TensorRef;
using sdc::cpu::Plan;
using sdc::cpu::PlanOptions;
using sdc::cpu::Precision;
namespace graph = sdc::graph;

std::vector<float> random_values(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-0.5f, 0.5f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

graph::ValueId weight(graph::Graph& g, Shape s, uint32_t seed) {
  return g.weight("w",
                  TensorRef::from_f32(random_values(sdc::shape_numel(s), seed), s, DType::F16));
}

// range(0): 0 f32, 1 bf16, 2 int8 (layers allowed int8 by the graph; the rest as `auto`).
Precision precision_of(const benchmark::State& st) {
  return st.range(0) == 2 ? Precision::INT8 : st.range(0) ? Precision::BF16 : Precision::F32;
}

// Compiles g, fills every f32 input, runs the plan in the loop; reports GFLOP/s from the MACs.
// winograd: 0 every convolution direct, 1 Winograd where it pays, 2 the same without F(4x4, 3x3)
// (f32 plans' F(2x2, 3x3) alone).
void run_graph(benchmark::State& st, const graph::Graph& g, double bytes_per_run = 0,
               int winograd = 1) {
  PlanOptions o;
  o.precision = precision_of(st);
  o.winograd = winograd != 0;
  o.winograd_f4 = winograd != 2;
  auto plan = Plan::compile(g, o);
  uint32_t seed = 1;
  for (const auto& [name, v] : g.inputs()) {
    const auto vals = random_values(sdc::shape_numel(g.shape(v)), seed++);
    std::copy(vals.begin(), vals.end(), plan->input_f32(name));
  }
  plan->run();  // warm up
  // CPU seconds of the steps with multiply-accumulates (conv, matmul, attention), and of all.
  double main_cpu = 0, all_cpu = 0;
  for (auto _ : st)
    for (const auto& step : plan->profile_run()) {
      if (step.macs > 0) main_cpu += step.cpu_seconds;
      all_cpu += step.cpu_seconds;
    }
  // On a shared machine wall-clock rates depend on the load; rates per CPU-second (of all
  // threads) times the core count estimate what an idle machine would reach.
  const double flops = 2.0 * double(g.macs()), runs = double(st.iterations());
  if (flops > 0) {
    st.counters["GFLOP/s"] =
        benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
    st.counters["GFLOP/cpu-s"] = flops * runs * 1e-9 / main_cpu;
  }
  if (bytes_per_run > 0) {
    st.counters["GB/s"] =
        benchmark::Counter(bytes_per_run * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
    st.counters["GB/cpu-s"] = bytes_per_run * runs * 1e-9 / all_cpu;
  }
  st.SetLabel(sdc::cpu::precision_name(o.precision));
}

// range(1) = channels, range(2) = spatial size, range(3) = Winograd where it pays (0: direct).
// The UNet's levels at 512x512, the VAE decoder's and TAESD's.
void BM_Conv3x3(benchmark::State& st) {
  const int64_t C = st.range(1), H = st.range(2);
  graph::Graph g;
  const auto x = g.input("x", {1, H, H, C});
  // int8 plans (bf16:2) only: the input as a bf16 activation, as the networks store them.
  const bool int8 = st.range(0) == 2;
  const auto y =
      g.conv2d(int8 ? g.scale(x, 1.f) : x, weight(g, {C, C, 3, 3}, 2), weight(g, {C}, 3), 1, 1);
  if (int8) g.allow_int8(y);
  g.output("y", y);
  run_graph(st, g, 0, int(st.range(3)));
}
// wino: 1 Winograd where it pays, 0 direct, 2 (f32) F(2x2, 3x3) instead of F(4x4, 3x3).
BENCHMARK(BM_Conv3x3)
    ->ArgsProduct({{0, 1}, {320}, {64}, {1, 0}})
    ->ArgsProduct({{0, 1}, {640}, {32}, {1, 0}})
    ->ArgsProduct({{0, 1}, {1280}, {16}, {1, 0}})
    ->ArgsProduct({{0, 1}, {512}, {64, 128}, {1, 0}})
    ->ArgsProduct({{0, 1}, {256}, {256}, {1, 0}})
    ->ArgsProduct({{0, 1}, {128}, {512}, {1, 0}})
    ->ArgsProduct({{0, 1}, {64}, {256, 512}, {1, 0}})  // TAESD's
    ->ArgsProduct({{0}, {320}, {64}, {2}})             // f32: F(2x2) against F(4x4)
    ->ArgsProduct({{0}, {512}, {64, 128}, {2}})
    ->ArgsProduct({{0}, {256}, {256}, {2}})
    ->ArgsProduct({{0}, {128}, {512}, {2}})
    ->ArgsProduct({{0}, {64}, {256, 512}, {2}})
    ->ArgsProduct({{2}, {320}, {64}, {1, 0}})  // int8 (bf16:2), UNet and VAE
    ->ArgsProduct({{2}, {512}, {128}, {1, 0}})
    ->ArgsProduct({{2}, {128}, {512}, {1, 0}})
    ->ArgNames({"bf16", "C", "HW", "wino"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// A 2x nearest upsampling followed by a 3x3 convolution (the decoders' upsamplers, planned as one
// step): range(0) precision as BM_Conv3x3's, range(1) channels, range(2) the input's size.
void BM_UpsampleConv3x3(benchmark::State& st) {
  const int64_t C = st.range(1), H = st.range(2);
  graph::Graph g;
  const auto x = g.scale(g.input("x", {1, H, H, C}), 1.f);
  const auto y = g.conv2d(g.upsample_nearest(x, 2 * H, 2 * H), weight(g, {C, C, 3, 3}, 2),
                          weight(g, {C}, 3), 1, 1);
  if (st.range(0) == 2) g.allow_int8(y);
  g.output("y", y);
  run_graph(st, g);
}
BENCHMARK(BM_UpsampleConv3x3)
    ->ArgsProduct({{0, 1, 2}, {512}, {64, 128}})  // the VAE decoder's
    ->ArgsProduct({{0, 1, 2}, {256}, {256}})
    ->ArgNames({"bf16", "C", "HW"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The decoders' last layer, a 3x3 convolution to 3 channels: range(0) precision as BM_Conv3x3's,
// range(1) input channels (the VAE's 128, TAESD's 64), range(2) the image's size. The input is a
// computed value (a scale), as the decoders' GroupNorm+SiLU or ReLU outputs are.
void BM_NarrowConv3x3(benchmark::State& st) {
  const int64_t C = st.range(1), H = st.range(2);
  graph::Graph g;
  const auto x = g.scale(g.input("x", {1, H, H, C}), 1.f);
  g.output("y", g.conv2d(x, weight(g, {3, C, 3, 3}, 2), weight(g, {3}, 3), 1, 1));
  run_graph(st, g);
}
BENCHMARK(BM_NarrowConv3x3)
    ->ArgsProduct({{0, 1}, {128, 64}, {512}})
    ->ArgNames({"bf16", "C", "HW"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Conv + residual add (sum post-op) as in every ResNet block.
void BM_Conv3x3Residual(benchmark::State& st) {
  const int64_t C = st.range(1), H = st.range(2);
  graph::Graph g;
  const auto x = g.input("x", {1, H, H, C});
  const auto r = g.scale(g.input("r", {1, H, H, C}), 1.f);
  g.output("y", g.add(g.conv2d(x, weight(g, {C, C, 3, 3}, 2), weight(g, {C}, 3), 1, 1), r));
  run_graph(st, g);
}
BENCHMARK(BM_Conv3x3Residual)
    ->Args({0, 320, 64})
    ->Args({1, 320, 64})
    ->ArgNames({"bf16", "C", "HW"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Attention of T queries over Tk keys, C channels, `heads` heads, allowed int8 (used by int8
// plans).
void attention_graph(benchmark::State& st, int64_t T, int64_t Tk, int64_t C, int64_t heads = 8) {
  graph::Graph g;
  const auto q = g.input("q", {1, T, C});
  const auto k = g.input("k", {1, Tk, C});
  const auto v = g.input("v", {1, Tk, C});
  // In a bf16 plan the projections store q/k/v as bf16; scale() stands in for them here.
  const auto a = g.attention(g.scale(q, 1.f), g.scale(k, 1.f), g.scale(v, 1.f), heads, false);
  g.allow_int8(a);
  g.output("y", a);
  run_graph(st, g);
}

// Self-attention: range(0) precision (0 f32, 1 bf16, 2 int8), range(1) tokens, range(2)
// channels.
void BM_Attention(benchmark::State& st) {
  attention_graph(st, st.range(1), st.range(1), st.range(2));
}
BENCHMARK(BM_Attention)
    ->Args({0, 4096, 320})
    ->Args({1, 4096, 320})
    ->Args({2, 4096, 320})
    ->Args({0, 1024, 640})
    ->Args({1, 1024, 640})
    ->Args({2, 1024, 640})
    ->Args({0, 256, 1280})
    ->Args({2, 256, 1280})
    ->ArgNames({"prec", "T", "C"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The VAE's mid-block self-attention at 512x512: one head of 512 channels over 64x64 tokens;
// range(0) precision as above.
void BM_VaeAttention(benchmark::State& st) {
  attention_graph(st, 4096, 4096, 512, 1);
}
BENCHMARK(BM_VaeAttention)
    ->Arg(0)
    ->Arg(2)
    ->ArgNames({"prec"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Cross-attention: 4096 queries, 77 keys; range(0) precision as above.
void BM_CrossAttention(benchmark::State& st) {
  attention_graph(st, 4096, 77, 320);
}
BENCHMARK(BM_CrossAttention)
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->ArgNames({"prec"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Feed-forward linear of the 64x64 transformer: 4096 x 320 -> 2560.
void BM_Linear(benchmark::State& st) {
  const int64_t T = st.range(1), K = st.range(2), N = st.range(3);
  graph::Graph g;
  const auto x = g.input("x", {1, T, K});
  g.output("y", g.linear(x, weight(g, {N, K}, 4), weight(g, {N}, 5)));
  run_graph(st, g);
}
BENCHMARK(BM_Linear)
    ->Args({0, 4096, 320, 2560})
    ->Args({1, 4096, 320, 2560})
    ->Args({0, 4096, 1280, 320})
    ->Args({1, 4096, 1280, 320})
    ->ArgNames({"bf16", "T", "K", "N"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// VAE decoder GroupNorm(32 groups)+SiLU: range(1) channels, range(2) spatial size.
void BM_GroupNorm(benchmark::State& st) {
  const int64_t C = st.range(1), H = st.range(2);
  graph::Graph g;
  const auto x = g.input("x", {1, H, H, C});
  g.output("y", g.group_norm(x, weight(g, {C}, 6), weight(g, {C}, 7), 32, 1e-6f, true));
  run_graph(st, g, double(H * H * C) * 4 * 3);  // read twice, write once
}
BENCHMARK(BM_GroupNorm)
    ->Args({0, 512, 256})
    ->Args({0, 128, 512})
    ->Args({0, 320, 64})
    ->ArgNames({"bf16", "C", "HW"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// GEGLU of the feed-forward: 4096 x 2560 -> 1280.
void BM_Geglu(benchmark::State& st) {
  graph::Graph g;
  g.output("y", g.geglu(g.input("x", {1, 4096, 2560})));
  run_graph(st, g, 4096.0 * 2560 * 4 + 4096.0 * 1280 * 4);
}
BENCHMARK(BM_Geglu)->Arg(0)->ArgNames({"bf16"})->Unit(benchmark::kMillisecond)->UseRealTime();

// The W8A8 linears' own product (int8_gemm) on random codes and weights, at the UNet's shapes:
// range(0) residual (0 none, 1 sum into y, 2 add an addend; 3: GEGLU, N its output channels),
// range(1..3) M, K, N; bf16 out as in an int8 plan.
void BM_Int8Gemm(benchmark::State& st) {
  using namespace sdc::cpu;
  const int64_t mode = st.range(0), M = st.range(1), K = st.range(2), N = st.range(3);
  if (!int8_gemm_fits(K, N)) return st.SkipWithError("int8_gemm does not run here");
  std::mt19937 rng(9);
  std::vector<uint8_t> codes(size_t(M * K));
  for (auto& c : codes) c = uint8_t(rng());
  std::vector<float> row_scale(size_t(M), 0.01f), row_zero(size_t(M), 128.f);
  const RowCodes rc{codes.data(), row_scale.data(), row_zero.data()};
  const int64_t Kp = (K + 63) / 64 * 64, halves = mode == 3 ? 2 : 1;
  std::vector<int8_t> values(size_t(halves * Kp * N));
  for (auto& v : values) v = int8_t(rng());
  std::vector<float> scales(size_t(N), 0.02f), bias(size_t(N), 0.1f);
  std::vector<int32_t> sums(size_t(N), 100);
  Int8GemmWeights value{values.data(), scales.data(), sums.data(), bias.data(), K, N};
  Int8GemmWeights gate = value;
  gate.values = values.data() + Kp * N;
  std::vector<uint16_t> y(size_t(M * N), 0x3f80), addend(size_t(M * N), 0x3f80);
  Int8GemmOutput out{y.data(), DType::BF16, GemmResidual::None, addend.data(), DType::BF16};
  if (mode == 1) out.residual = GemmResidual::Sum;
  if (mode == 2) out.residual = GemmResidual::Add;
  const auto run = [&] {
    if (mode == 3)
      int8_gemm_geglu(rc, M, value, gate, out);
    else
      int8_gemm(rc, M, value, out);
  };
  // range(4) = 1: caches cold as in a network, where y and the addend were written long before
  // (64 MiB written between runs, not timed).
  std::vector<char> evict(st.range(4) ? size_t(64) << 20 : 0);
  run();
  for (auto _ : st) {
    if (!evict.empty()) {
      st.PauseTiming();
      for (size_t i = 0; i < evict.size(); i += 64) evict[i] = char(i);
      st.ResumeTiming();
    }
    run();
  }
  st.counters["GFLOP/s"] = benchmark::Counter(2e-9 * double(M * K * N * halves),
                                              benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Int8Gemm)
    ->ArgsProduct({{0}, {4096}, {320}, {320}, {0, 1}})   // to_q/k/v, 64x64 level
    ->ArgsProduct({{1}, {4096}, {320}, {320}, {0, 1}})   // attn to_out (+ residual)
    ->ArgsProduct({{2}, {4096}, {320}, {320}, {0, 1}})   // proj_out (+ the block's input)
    ->ArgsProduct({{3}, {4096}, {320}, {1280}, {0, 1}})  // GEGLU
    ->ArgsProduct({{1}, {4096}, {1280}, {320}, {0, 1}})  // ff.net.2
    ->ArgsProduct({{1}, {1024}, {640}, {640}, {0, 1}})   // attn to_out, 32x32 level
    ->ArgsProduct({{3}, {1024}, {640}, {2560}, {0, 1}})  // GEGLU, 32x32 level
    ->ArgsProduct({{0}, {65536}, {512}, {256}, {1}})     // the VAE's 1x1 shortcut at 256x256
    ->ArgNames({"mode", "M", "K", "N", "cold"})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// The W8A8 activation quantiser (what a reused quantised input saves): f32 [T, C] -> u8.
void BM_QuantizeU8(benchmark::State& st) {
  const int64_t n = st.range(0) * st.range(1);
  const std::vector<float> x = random_values(n, 8);
  std::vector<uint8_t> q(static_cast<size_t>(n));
  for (auto _ : st)
    benchmark::DoNotOptimize(sdc::cpu::quantize_u8(x.data(), DType::F32, n, q.data()));
  st.counters["GB/s"] =
      benchmark::Counter(double(n) * 9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_QuantizeU8)
    ->Args({4096, 320})
    ->Args({1024, 640})
    ->Args({256, 1280})
    ->Args({64, 1280})
    ->ArgNames({"T", "C"})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
