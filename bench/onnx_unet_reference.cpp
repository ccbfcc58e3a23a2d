// sdc's own f32 UNet step on fixed random inputs, written with the inputs as a safetensors file,
// so that an ONNX export of the same model can be checked against it at full size (see
// bench/onnx_full_size.sh, which runs ONNX Runtime on the exported UNet with these inputs).
//
//   sdc_bench_onnx_unet_reference MODEL OUT.safetensors [WIDTH HEIGHT]
// Tensors written (NCHW, f32): sample [1,4,h,w], timestep [1], encoder_hidden_states
// [1,77,768], out_sample [1,4,h,w].
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>

#include "backend/cpu/plan.h"
#include "common/error.h"
#include "common/stopwatch.h"
#include "graph/builders/builders.h"
#include "io/safetensors.h"
#include "model/model_loader.h"

int main(int argc, char** argv) {
  using namespace sdc;
  if (argc != 3 && argc != 5) {
    std::fprintf(stderr, "usage: %s MODEL OUT.safetensors [WIDTH HEIGHT]\n", argv[0]);
    return 2;
  }
  try {
    const int width = argc == 5 ? std::atoi(argv[3]) : 512;
    const int height = argc == 5 ? std::atoi(argv[4]) : 512;
    const int h = height / 8, w = width / 8;
    const model::LoadedModel m = model::load_model(argv[1], {});
    const int64_t ctx_dim = m.unet.context_dim, c = m.unet.in_channels;

    std::mt19937 rng(20261204);
    std::normal_distribution<float> normal(0.f, 1.f);
    std::vector<float> sample(size_t(c * h * w)), context(size_t(77 * ctx_dim));
    for (float& x : sample) x = normal(rng);
    for (float& x : context) x = normal(rng);
    const float t = 500.f;

    Stopwatch compile_time;
    graph::UNetShape s;
    s.height = h;
    s.width = w;
    cpu::PlanOptions o;
    o.precision = cpu::Precision::F32;
    auto plan = cpu::Plan::compile(graph::build_unet(m.weights, m.unet, s), o);
    std::fprintf(stderr, "plan compiled in %.1f s\n", compile_time.seconds());
    // NCHW -> NHWC for the plan.
    float* in = plan->input_f32("sample");
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < int64_t(h) * w; ++i) in[i * c + ch] = sample[size_t(ch * h * w + i)];
    *plan->input_f32("timestep") = t;
    std::copy(context.begin(), context.end(), plan->input_f32("context"));
    Stopwatch run_time;
    plan->run();
    std::fprintf(stderr, "f32 UNet step %dx%d in %.2f s\n", width, height, run_time.seconds());
    const float* eps = plan->output("eps");
    const int64_t co = m.unet.out_channels;
    std::vector<float> out(size_t(co * h * w));
    for (int64_t ch = 0; ch < co; ++ch)
      for (int64_t i = 0; i < int64_t(h) * w; ++i) out[size_t(ch * h * w + i)] = eps[i * co + ch];

    WeightMap tensors;
    tensors.set("sample", TensorRef::from_f32(sample, {1, c, h, w}, DType::F32));
    tensors.set("timestep", TensorRef::from_f32({t}, {1}, DType::F32));
    tensors.set("encoder_hidden_states",
                TensorRef::from_f32(context, {1, 77, ctx_dim}, DType::F32));
    tensors.set("out_sample", TensorRef::from_f32(out, {1, co, h, w}, DType::F32));
    io::write_safetensors(argv[2], tensors);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
