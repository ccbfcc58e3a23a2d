// W8A8 steps that read the same input quantise it once: the first of them writes the u8 codes,
// scale and zero point to a shared arena store, the others reuse them. The outputs must be
// bit-identical to plans where each layer is the input's only int8 reader (and so quantises it
// itself), also with a float step using the scratch between the readers and over repeated runs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "backend/cpu/plan.h"
#include "backend/cpu/prepacked_weights.h"
#include "reference.h"

namespace sdc::test {
namespace {

using cpu::Plan;
using cpu::PlanOptions;
using cpu::Precision;

constexpr int64_t N = 2, T = 12, K = 48, H = 6, W = 5, C = 32;

// x -> LayerNorm -> the int8 linears in `linears` (attn1's q/k/v pattern, the last a GEGLU
// projection), with a float linear on another input `y` created among them; img -> GroupNorm +
// SiLU -> the int8 convs in `convs` (0, 2: 3x3; 1: a 1x1, as a ResBlock's conv and skip).
graph::Graph fan_out(const std::vector<int>& linears, const std::vector<int>& convs) {
  graph::Graph g;
  const auto x = g.input("x", {N, T, K});
  const auto n = g.layer_norm(x, add_weight(g, "ln.g", random_vec(K, 1, 0.5f, 1.5f), {K}),
                              add_weight(g, "ln.b", random_vec(K, 2), {K}), 1e-5f);
  for (int i : linears) {
    const int64_t co = i == 2 ? 2 * 16 : 24;
    const auto w =
        add_weight(g, "w" + std::to_string(i), random_vec(co * K, 10 + i), {co, K}, DType::F16);
    const auto b = add_weight(g, "b" + std::to_string(i), random_vec(co, 20 + i), {co});
    const auto lin = g.linear(n, w, b);
    g.allow_int8(lin);
    g.output("lin" + std::to_string(i), i == 2 ? g.geglu(lin) : lin);
    if (i == linears.front()) {
      const auto y = g.input("y", {N, T, K});
      g.output("float",
               g.linear(y, add_weight(g, "wf", random_vec(40 * K, 30), {40, K}), graph::kNone));
    }
  }
  const auto img = g.input("img", {N, H, W, C});
  const auto a = g.group_norm(img, add_weight(g, "gn.g", random_vec(C, 3, 0.5f, 1.5f), {C}),
                              add_weight(g, "gn.b", random_vec(C, 4), {C}), 8, 1e-5f, true);
  for (int i : convs) {
    const int k = i == 1 ? 1 : 3;
    const auto w = add_weight(g, "cw" + std::to_string(i), random_vec(16 * C * k * k, 40 + i),
                              {16, C, k, k}, DType::F16);
    const auto conv = g.conv2d(
        a, w, add_weight(g, "cb" + std::to_string(i), random_vec(16, 50 + i), {16}), 1, k / 2);
    g.allow_int8(conv);
    g.output("conv" + std::to_string(i), conv);
  }
  return g;
}

std::unique_ptr<Plan> compile(const graph::Graph& g) {
  PlanOptions o;
  o.precision = Precision::INT8;
  o.check = true;  // dead buffers poisoned: codes read after their store died would show
  return Plan::compile(g, o);
}

void run(Plan& p, const graph::Graph& g, uint32_t seed) {
  for (const auto& [name, v] : g.inputs())
    fill_input(p, name, random_vec(shape_numel(g.shape(v)), seed + uint32_t(name.size()), -2, 3));
  p.run();
}

int64_t numel_of(const graph::Graph& g, const std::string& output) {
  for (const auto& [name, v] : g.outputs())
    if (name == output) return shape_numel(g.shape(v));
  return 0;
}

TEST(Int8SharedInput, ReadersOfOneInputQuantiseItOnceWithIdenticalResults) {
  if (!cpu::isa_has_int8_dot()) GTEST_SKIP() << "no VNNI: int8 plans are refused here";
  const graph::Graph g = fan_out({0, 1, 2}, {0, 1, 2});
  auto p = compile(g);
  int reused = 0, int8_steps = 0;
  for (const auto& s : p->steps()) {
    int8_steps += s.kind.find(".int8") != std::string::npos;
    reused += s.kind.find(".int8.reused") != std::string::npos;
  }
  EXPECT_EQ(int8_steps, 6);
  // Two of three linears, one of the two 3x3 convs; the 1x1 quantises for itself, as the 3x3s'
  // codes carry their padding as a frame of zero points.
  EXPECT_EQ(reused, 3);
  run(*p, g, 1);
  run(*p, g, 2);  // other inputs: each run quantises afresh
  for (const std::string name : {"lin0", "lin1", "lin2", "conv0", "conv1", "conv2"}) {
    const graph::Graph alone =
        name[0] == 'l' ? fan_out({name[3] - '0'}, {}) : fan_out({}, {name[4] - '0'});
    auto q = compile(alone);
    run(*q, alone, 2);
    const size_t bytes = size_t(numel_of(g, name)) * sizeof(float);
    EXPECT_EQ(std::memcmp(p->output(name), q->output(name), bytes), 0) << name;
  }
}

}  // namespace
}  // namespace sdc::test
