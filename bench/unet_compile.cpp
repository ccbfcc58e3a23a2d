// Load time of the UNet plan: compiles the UNet of a checkpoint at one size, alternating the
// precisions given, and prints each compile's wall and CPU seconds (process CPU: all threads).
// Plans are dropped between compiles, so every compile packs its weights afresh.
//   sdc_bench_unet_compile MODEL [rounds=3] [precisions=f32,int8] [latent=32]
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cpu/plan.h"
#include "common/stopwatch.h"
#include "graph/builders/builders.h"
#include "model/model_loader.h"
#include "pipeline/plan_cache.h"

namespace {
double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}
}  // namespace

int main(int argc, char** argv) {
  using namespace sdc;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL [rounds=3] [precisions=f32,int8] [latent=32]\n", argv[0]);
    return 2;
  }
  try {
    const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
    std::vector<std::string> precisions;
    std::stringstream list(argc > 3 ? argv[3] : "f32,int8");
    for (std::string p; std::getline(list, p, ',');) precisions.push_back(p);
    const int64_t latent = argc > 4 ? std::atoll(argv[4]) : 32;
    const model::LoadedModel m = model::load_model(argv[1], {});
    graph::UNetShape s;
    s.height = latent;
    s.width = latent;
    for (int r = 0; r < rounds; ++r)
      for (const std::string& p : precisions) {
        cpu::PlanOptions o;
        o.precision = cpu::parse_precision(p);
        o = pipeline::denoiser_options(o);  // as generation plans the UNet
        const graph::Graph g = graph::build_unet(m.weights, m.unet, s);
        const Stopwatch wall;
        const double cpu0 = cpu_seconds();
        auto plan = cpu::Plan::compile(g, o);
        std::printf("%-5s compile %.2f s wall, %.2f s CPU\n", p.c_str(), wall.seconds(),
                    cpu_seconds() - cpu0);
        std::fflush(stdout);
      }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
