// Winograd F(4x4, 3x3) in f32 (winograd_f4.h): the kernel transform at planning (in double), the
// choice of the transforms' vector width (winograd_f32_transforms.h), and the per-thread chunks
// around oneDNN's products.
//
// With d a 6x6 input tile, g the 3x3 kernel and Y the 4x4 output block (interpolation points 0,
// +-1, +-2 and infinity, Lavin & Gray 2015):
//   Y = A^T [ (G g G^T) .* (B^T d B) ] A
//   B^T = [4  0 -5  0 1 0;  0 -4 -4  1 1 0;  0  4 -4 -1 1 0;
//          0 -2 -1  2 1 0;  0  2 -1 -2 1 0;  0  4  0 -5 0 1]
//   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
//   A^T = [1 1 1 1 1 0;  0 1 -1 2 -2 0;  0 1 1 4 4 0;  0 1 -1 8 -8 1]
#include "backend/cpu/winograd_f4.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/kernel_transform.h"
#include "backend/cpu/winograd_conv.h"
#include "backend/cpu/winograd_f32.h"
#include "backend/cpu/winograd_f32_transforms.h"

namespace sdc::cpu {

namespace {

constexpr int kPoints = kWinogradF4Points;

}  // namespace

// Tiles per chunk: each chunk reads all 36 transformed kernels (1.3-38 MiB at 64-512 channels),
// so a chunk is their reuse. Up to 128 tiles, in a number of chunks that the threads share evenly.
// Measured on an Ice Lake, 2 threads (BM_Conv3x3 f32, medians of 3): against chunks of 32, 128
// took 320 channels at 64^2 14.9 -> 11.0 ms, 512 at 64^2 36.7 -> 27.2, 512 at 128^2 135 -> 90,
// 64 at 512^2 51.5 -> 42.2; 256 was no faster where it still gave every thread a chunk.
int64_t winograd_f4_chunk_tiles(int64_t total, int threads) {
  const int64_t t = std::max(1, threads);
  const int64_t chunks = t * std::max<int64_t>(1, (total + 128 * t - 1) / (128 * t));
  return std::max<int64_t>(1, (total + chunks - 1) / chunks);
}

bool winograd_f4_pays(int64_t N, int64_t H, int64_t W, int64_t Ci, int64_t Co, int threads) {
  return winograd_f32_pays(N, H, W, Ci, Co, threads) &&
         winograd_fills_threads(winograd_tile_count<4>(N, H, W), threads);
}

TensorRef winograd_f4_weights(const TensorRef& w) {
  check_3x3_kernel(w, "Winograd F(4x4, 3x3) convolution weight");
  const int64_t Co = w.shape[0], Ci = w.shape[1];
  thread_local std::vector<float> staging;
  staging.resize(size_t(kPoints * Ci * Co));
  float* out = staging.data();
  static constexpr double G[6][3] = {{1. / 4, 0, 0},
                                     {-1. / 6, -1. / 6, -1. / 6},
                                     {-1. / 6, 1. / 6, -1. / 6},
                                     {1. / 24, 1. / 12, 1. / 6},
                                     {1. / 24, -1. / 12, 1. / 6},
                                     {0, 0, 1}};
  for_each_3x3_kernel(w, [out, Co, Ci](int64_t o, int64_t i, const float* g) {
    double gg[6][3];  // G g
    for (int r = 0; r < 6; ++r)
      for (int c = 0; c < 3; ++c)
        gg[r][c] = G[r][0] * g[c] + G[r][1] * g[3 + c] + G[r][2] * g[6 + c];
    for (int r = 0; r < 6; ++r)  // (G g) G^T
      for (int c = 0; c < 6; ++c) {
        const double u = gg[r][0] * G[c][0] + gg[r][1] * G[c][1] + gg[r][2] * G[c][2];
        out[(size_t(6 * r + c) * Ci + i) * Co + o] = float(u);
      }
  });
  return staged_tensor(staging, Shape{kPoints, Ci, Co}, w.source);
}

WinogradF4Conv::WinogradF4Conv(const Shape& s, const dnnl::engine& engine, int threads)
    : s_(s),
      threads_(std::max(1, threads)),
      tiles_(winograd_f4_chunk_tiles(winograd_tile_count<4>(s.N, s.H, s.W), threads_)),
      avx512_(winograd_f32::wide(s.Ci) && winograd_f32::wide(s.Co)),
      products_(kPoints, kPoints, tiles_, s.Ci, s.Co, engine, WinogradProducts::Type::F32),
      zeros_(size_t(s.Ci), 0.f) {
  check_f32_winograd_channels(s.Ci, s.Co, "winograd_f4.cpp", "f32 Winograd F(4x4, 3x3) channels");
}

void WinogradF4Conv::run(const float* x, const void* u, const float* bias, const float* add,
                         float* y, void* scratch, bool relu) const {
  const Shape s = s_;
  const int64_t total = winograd_tile_count<4>(s.N, s.H, s.W), tiles = tiles_;
  const int64_t chunks = (total + tiles - 1) / tiles;
  const size_t thread_bytes = products_.thread_scratch_bytes();
#pragma omp parallel num_threads(threads_)
  {
    // Inside this parallel region oneDNN runs the products on the calling thread alone.
    auto* mine = static_cast<uint8_t*>(scratch) + thread_bytes * size_t(omp_get_thread_num());
    WinogradProducts::Bound products = products_.bind(u, mine);
    const size_t ms = size_t(tiles * s.Co);
#pragma omp for schedule(static)
    for (int64_t k = 0; k < chunks; ++k) {
      const int64_t k0 = k * tiles, count = std::min(tiles, total - k0);
      auto* V = static_cast<float*>(products.tiles());
      const auto* M = static_cast<const float*>(products.products());
      if (avx512_) {
        wino_f32_avx512::f4_input_chunk(x, zeros_.data(), s, k0, count, tiles, V);
        products.run();
        wino_f32_avx512::f4_output_chunk(M, ms, s, k0, count, bias, add, y, relu);
      } else {
        wino_f32_avx2::f4_input_chunk(x, zeros_.data(), s, k0, count, tiles, V);
        products.run();
        wino_f32_avx2::f4_output_chunk(M, ms, s, k0, count, bias, add, y, relu);
      }
    }
  }
}

}  // namespace sdc::cpu
