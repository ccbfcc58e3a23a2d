// Plan::set_input_nchw / read_output_nchw: callers speak NCHW, the plan keeps NHWC; batch rows
// select a slice; 3-D tensors pass through unchanged; out-of-range rows are refused.
#include <gtest/gtest.h>

#include <numeric>

#include "backend/cpu/plan.h"
#include "common/error.h"
#include "graph/graph.h"

namespace sdc::cpu {
namespace {

TEST(PlanLayout, NchwInNchwOutThroughAnNhwcPlan) {
  const int64_t N = 2, H = 3, W = 4, C = 5;
  graph::Graph g;
  const auto x = g.input("x", {N, H, W, C});
  g.output("y", g.scale(x, 2.0f, 1.0f));  // elementwise: the layout is all that matters
  const auto plan = Plan::compile(g, {});
  std::vector<float> nchw(size_t(N * C * H * W));
  std::iota(nchw.begin(), nchw.end(), 0.0f);
  plan->set_input_nchw("x", nchw.data());
  // NHWC inside: element (n=0, h=0, w=1, c=0) is NCHW index 1, and (0,0,0,c=1) is H*W.
  const float* raw = plan->input_f32("x");
  EXPECT_EQ(raw[0], 0.0f);
  EXPECT_EQ(raw[1], float(H * W));
  EXPECT_EQ(raw[C], 1.0f);
  plan->run();
  EXPECT_EQ(plan->output_shape_nchw("y"), (Shape{N, C, H, W}));
  std::vector<float> out(nchw.size());
  plan->read_output_nchw("y", out.data());
  for (size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], 2.0f * nchw[i] + 1.0f) << i;

  // Row 1 alone, written and read back as one NCHW image.
  std::vector<float> one(size_t(C * H * W), -1.0f);
  plan->set_input_nchw("x", one.data(), 1, 1);
  plan->run();
  std::vector<float> back(one.size());
  plan->read_output_nchw("y", back.data(), 1, 1);
  for (float v : back) ASSERT_EQ(v, -1.0f);
  plan->read_output_nchw("y", back.data(), 0, 1);  // row 0 untouched
  for (size_t i = 0; i < back.size(); ++i) ASSERT_EQ(back[i], 2.0f * nchw[i] + 1.0f);

  EXPECT_THROW(plan->set_input_nchw("x", one.data(), 2, 1), Error);
  EXPECT_THROW(plan->read_output_nchw("y", back.data(), 1, 2), Error);
  EXPECT_THROW(plan->set_input_nchw("nope", one.data()), Error);
}

TEST(PlanLayout, ThreeDimensionalTensorsAreCopiedAsTheyAre) {
  graph::Graph g;
  const auto x = g.input("ctx", {2, 3, 4});
  g.output("y", g.scale(x, 1.0f, 0.5f));
  const auto plan = Plan::compile(g, {});
  std::vector<float> v(24);
  std::iota(v.begin(), v.end(), 0.0f);
  plan->set_input_nchw("ctx", v.data());
  plan->run();
  std::vector<float> out(24);
  plan->read_output_nchw("y", out.data());
  for (size_t i = 0; i < 24; ++i) EXPECT_EQ(out[i], v[i] + 0.5f);
}

}  // namespace
}  // namespace sdc::cpu
