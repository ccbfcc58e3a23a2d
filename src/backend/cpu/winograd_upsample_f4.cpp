// Winograd F(4x4, 2x2) per phase of a 2x-upsampling convolution (winograd_upsample_f4.h): the
// kernel transform at planning and the chunks; the transforms are winograd_f4_kernel.h's, in AVX2
// or AVX-512.
//
// Per phase, with d the 5x5 sub-tile, g the phase's 2x2 kernel and Y its 4x4 outputs:
//   Y = A^T [ (G g G^T) .* (B^T d B) ] A
// with the points 0, 1, -1, 2 and infinity, B^T's rows scaled to integers and G's by the inverse:
//   B^T = [2 -1 -2  1 0;     G = [1/2    0;      A^T = [1  1  1  1 0;
//          0  2  1 -1 0;          1/2  1/2;             0  1 -1  2 0;
//          0 -2  3 -1 0;          1/6 -1/6;             0  1  1  4 0;
//          0 -1  0  1 0;          1/6  1/3;             0  1 -1  8 1]
//          0  2 -1 -2 1]          0    1]
#include "backend/cpu/winograd_upsample_f4.h"

#include <omp.h>

#include <algorithm>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/kernel_transform.h"
#include "backend/cpu/upsample_conv.h"
#include "backend/cpu/winograd_f32.h"
#include "backend/cpu/winograd_f32_transforms.h"
#include "backend/cpu/winograd_upsample.h"

namespace sdc::cpu {

namespace {

constexpr int kPhasePoints = kWinogradUpsampleF4Points;

}  // namespace

bool winograd_upsample_f4_pays(int64_t N, int64_t H, int64_t W, int64_t Ci, int64_t Co,
                               int threads) {
  return winograd_upsample_f32_pays(N, H, W, Ci, Co, threads) &&
         winograd_fills_threads(winograd_tile_count<4>(N, H, W), threads);
}

TensorRef winograd_upsample_f4_weights(const TensorRef& w) {
  check_3x3_kernel(w, "Winograd F(4x4, 2x2) upsample convolution weight");
  const int64_t Co = w.shape[0], Ci = w.shape[1];
  thread_local std::vector<float> staging;
  staging.resize(size_t(4 * kPhasePoints * Ci * Co));
  float* out = staging.data();
  static constexpr double G[5][2] = {
      {1. / 2, 0}, {1. / 2, 1. / 2}, {1. / 6, -1. / 6}, {1. / 6, 1. / 3}, {0, 1}};
  for_each_3x3_kernel(w, [out, Co, Ci](int64_t o, int64_t i, const float* k) {
    for (int p = 0; p < 4; ++p) {
      float g[4];  // the phase's 2x2 kernel, row-major
      upsample_phase_kernel(k, p / 2, p % 2, g);
      double gg[5][2];  // G g
      for (int r = 0; r < 5; ++r)
        for (int c = 0; c < 2; ++c) gg[r][c] = G[r][0] * g[c] + G[r][1] * g[2 + c];
      for (int r = 0; r < 5; ++r)  // (G g) G^T
        for (int c = 0; c < 5; ++c) {
          const double u = gg[r][0] * G[c][0] + gg[r][1] * G[c][1];
          out[(size_t(kPhasePoints * p + 5 * r + c) * Ci + i) * Co + o] = float(u);
        }
    }
  });
  return staged_tensor(staging, Shape{4 * kPhasePoints, Ci, Co}, w.source);
}

WinogradUpsampleF4Conv::WinogradUpsampleF4Conv(const Shape& s, const dnnl::engine& engine,
                                               int threads)
    : s_(s),
      threads_(std::max(1, threads)),
      tiles_(winograd_f4_chunk_tiles(winograd_tile_count<4>(s.N, s.H, s.W), threads_)),
      avx512_(winograd_f32::wide(s.Ci) && winograd_f32::wide(s.Co)),
      products_(4 * kPhasePoints, kPhasePoints, tiles_, s.Ci, s.Co, engine,
                WinogradProducts::Type::F32),
      zeros_(size_t(s.Ci), 0.f) {
  check_f32_winograd_channels(s.Ci, s.Co, "winograd_upsample_f4.cpp",
                              "f32 Winograd F(4x4, 2x2) upsample channels");
}

void WinogradUpsampleF4Conv::run(const float* x, const void* u, const float* bias, float* y,
                                 void* scratch) const {
  const Shape s = s_;
  const int64_t total = winograd_tile_count<4>(s.N, s.H, s.W), tiles = tiles_;
  const int64_t chunks = (total + tiles - 1) / tiles;
  const size_t thread_bytes = products_.thread_scratch_bytes();
#pragma omp parallel num_threads(threads_)
  {
    // Inside this parallel region oneDNN runs the products on the calling thread alone. The four
    // phases share the thread's V and M.
    auto* mine = static_cast<uint8_t*>(scratch) + thread_bytes * size_t(omp_get_thread_num());
    std::vector<WinogradProducts::Bound> phase;
    for (int p = 0; p < 4; ++p) phase.push_back(products_.bind(u, mine, kPhasePoints * p));
    auto* V = static_cast<float*>(phase[0].tiles());
    const auto* M = static_cast<const float*>(phase[0].products());
    const size_t ms = size_t(tiles * s.Co);
#pragma omp for schedule(static)
    for (int64_t k = 0; k < chunks; ++k) {
      const int64_t k0 = k * tiles, count = std::min(tiles, total - k0);
      for (int p = 0; p < 4; ++p) {
        if (avx512_) {
          wino_f32_avx512::up4_input_chunk(x, zeros_.data(), s, p, k0, count, tiles, V);
          phase[size_t(p)].run();
          wino_f32_avx512::up4_output_chunk(M, ms, s, p, k0, count, bias, y);
        } else {
          wino_f32_avx2::up4_input_chunk(x, zeros_.data(), s, p, k0, count, tiles, V);
          phase[size_t(p)].run();
          wino_f32_avx2::up4_output_chunk(M, ms, s, p, k0, count, bias, y);
        }
      }
    }
  }
}

}  // namespace sdc::cpu
