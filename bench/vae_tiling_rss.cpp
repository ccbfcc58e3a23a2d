// Peak memory and time of one full-size SD1.5 VAE decode (random weights, f32 compute), untiled
// or in tiles, for the README's VAE-tiling figures. One decode per process, so that the peak RSS
// (getrusage) is that decode's; run both ways side by side:
//
//   sdc_bench_vae_tiling WIDTH HEIGHT [TILE_PX]      (no TILE_PX: untiled)
// Prints: size, tile, decode seconds, peak RSS (MiB), RSS before the decode (weights).
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <random>

#include "common/error.h"
#include "common/stopwatch.h"
#include "model/infer_hparams.h"
#include "model/random_model.h"
#include "pipeline/plan_cache.h"
#include "pipeline/vae_tiling.h"

namespace {
long peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024;
}
}  // namespace

int main(int argc, char** argv) {
  using namespace sdc;
  if (argc != 3 && argc != 4) {
    std::fprintf(stderr, "usage: %s WIDTH HEIGHT [TILE_PX]\n", argv[0]);
    return 2;
  }
  try {
    const int width = std::atoi(argv[1]), height = std::atoi(argv[2]);
    const int tile = argc == 4 ? std::atoi(argv[3]) : 0;
    const int h = height / 8, w = width / 8;
    model::LoadedModel m;
    model::RandomModelParts parts;
    parts.unet = parts.text_encoder = false;
    m.weights = model::make_random_sd15(7, DType::F16, parts);
    m.vae = model::infer_vae_params(m.weights);
    m.has_vae = true;
    pipeline::PlanCache plans(m, {});
    std::mt19937 rng(20261204);
    std::normal_distribution<float> normal(0.f, 1.f);
    std::vector<float> z(size_t(4 * h * w));
    for (float& x : z) x = normal(rng);
    const long before = peak_rss_mib();
    Stopwatch clock;
    std::vector<float> image;
    if (tile > 0) {
      image = pipeline::tiled_vae_decode(plans, z, h, w, tile);
    } else {
      cpu::Plan& dec = plans.vae_decoder(1, h, w);
      dec.set_input_nchw("latent", z.data());
      dec.run();
      image.resize(size_t(3 * 64 * h * w));
      dec.read_output_nchw("image", image.data());
    }
    const double s = clock.ms() / 1000.0;
    std::printf(
        "%dx%d tile %s: decode (incl. planning) %.2f s, peak RSS %ld MiB (%ld MiB before)\n", width,
        height, tile > 0 ? argv[3] : "none", s, peak_rss_mib(), before);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
