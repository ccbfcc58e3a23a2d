// Winograd F(2x2, 2x2) per phase of a 2x-upsampling 3x3 convolution (winograd_upsample.h): the
// kernel transform at planning, the input and output transforms in AVX-512 (f32 plans':
// winograd_f32.cpp, AVX2), the chunks.
//
// Per phase, with d the 3x3 sub-tile, g the phase's 2x2 kernel and Y its 2x2 outputs:
//   Y = A^T [ (G g G^T) .* (B^T d B) ] A,  B^T = [1 -1 0; 0 1 0; 0 -1 1], G = [1 0; 1 1; 0 1],
//   A^T = [1 1 0; 0 1 1]
// (in 1D: y0 = (d0 - d1) g0 + d1 (g0 + g1), y1 = d1 (g0 + g1) + (d2 - d1) g1).
#include "backend/cpu/winograd_upsample.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/kernel_transform.h"
#include "backend/cpu/memory_plan.h"
#include "backend/cpu/simd.h"
#include "backend/cpu/upsample_conv.h"
#include "backend/cpu/winograd_f32.h"
#include "common/error.h"

namespace sdc::cpu {

namespace {

// Tiles per chunk: a chunk runs phase after phase, 9 transformed values per tile each, whose
// products set its length as in WinogradConv (winograd_chunk_most).
int64_t chunk_tiles(const WinogradUpsampleConv::Shape& s, int threads,
                    WinogradUpsampleConv::Type type) {
  return winograd_chunk_tiles(winograd_tile_count(s.N, s.H, s.W), threads,
                              winograd_chunk_most(type, 9, s.Co));
}

// Phase (py, px)'s 9 transformed values B^T d B of the 16 channels at c of a 4x4 tile `tile`
// (row-major, bf16 bits or f32; d its rows py..py+2, columns px..px+2), into V's 9 rows (row
// stride vs), bf16 or f32; kTrack: each point's absolute maximum into top[9] (masked-off lanes are
// 0).
template <bool kTrack = false, class TX, class TV>
SDC_AVX512_BF16 void input_tile(const TX* const tile[16], int py, int px, int64_t c, __mmask16 m,
                                TV* v, size_t vs, __m512* top = nullptr) {
  __m512 t[3][3];  // B^T over the rows
  for (int j = 0; j < 3; ++j) {
    const __m512 r0 = simd::load(tile[4 * py + px + j] + c, m),
                 r1 = simd::load(tile[4 * (py + 1) + px + j] + c, m),
                 r2 = simd::load(tile[4 * (py + 2) + px + j] + c, m);
    t[0][j] = _mm512_sub_ps(r0, r1);
    t[1][j] = r1;
    t[2][j] = _mm512_sub_ps(r2, r1);
  }
  for (int a = 0; a < 3; ++a) {  // then B over the columns
    const __m512 u[3] = {_mm512_sub_ps(t[a][0], t[a][1]), t[a][1], _mm512_sub_ps(t[a][2], t[a][1])};
    for (int b = 0; b < 3; ++b) {
      store_as(v + (3 * a + b) * vs + c, u[b], m);
      if constexpr (kTrack) top[3 * a + b] = _mm512_max_ps(top[3 * a + b], _mm512_abs_ps(u[b]));
    }
  }
}

// Phase p of tiles [k0, k0 + count) into V [9, tiles, Ci]; the rest of V's tiles zeroed.
SDC_AVX512_BF16 void input_chunk(const uint16_t* x, const uint16_t* zeros,
                                 const WinogradUpsampleConv::Shape& s, int p, int64_t k0,
                                 int64_t count, int64_t tiles, uint16_t* V) {
  const size_t vs = size_t(tiles * s.Ci);
  for (int64_t t = 0; t < tiles; ++t) {
    if (t >= count) {
      for (int i = 0; i < 9; ++i)
        std::memset(V + i * vs + t * s.Ci, 0, size_t(s.Ci) * sizeof(uint16_t));
      continue;
    }
    const uint16_t* px[16];
    winograd_tile_pixels(x, zeros, s.H, s.W, s.Ci, winograd_tile(k0 + t, s.H, s.W), px);
    for (int64_t c = 0; c < s.Ci; c += 16)
      input_tile(px, p / 2, p % 2, c, simd::tail_mask(s.Ci - c), V + t * s.Ci, vs);
  }
}

// Phase p of tiles [k0, k0 + count) of x (bf16 bits or f32) for the int8 products
// (quantise_chunk_points): V [9, tiles, Ci], scales [tiles, 9].
template <class T>
SDC_AVX512_BF16 void input_chunk_int8(const T* x, const T* zeros,
                                      const WinogradUpsampleConv::Shape& s, int p, int64_t k0,
                                      int64_t count, int64_t tiles, float* rows, uint8_t* V,
                                      float* scales) {
  const size_t rs = size_t(s.Ci);
  quantise_chunk_points<9>(
      x, zeros, s.H, s.W, s.Ci, k0, count, tiles, size_t(tiles * s.Ci), rows, V, scales,
      [rs, p](const T* const px[16], int64_t c, __mmask16 m, float* r, __m512* top)
          SDC_AVX512_BF16 { input_tile<true>(px, p / 2, p % 2, c, m, r, rs, top); });
}
// The same over x of the convolution's input type (f32 where `f32`, else bf16).
void input_chunk_int8(const void* x, bool f32, const float* zeros,
                      const WinogradUpsampleConv::Shape& s, int p, int64_t k0, int64_t count,
                      int64_t tiles, float* rows, uint8_t* V, float* scales) {
  with_activations(x, f32, zeros, [&](const auto* xt, const auto* zt) {
    input_chunk_int8(xt, zt, s, p, k0, count, tiles, rows, V, scales);
  });
}

// A^T M A of one phase of one tile (its products through `points`) plus the bias, into the big
// image: out[k] is the phase's output k (small position (k / 2, k % 2) of the tile), null where
// that position lies past the image.
template <class TY, class Points>
SDC_AVX512_BF16 void output_tile(const Points& points, int64_t Co, const float* bias,
                                 TY* const out[4]) {
  for (int64_t c = 0; c < Co; c += 16) {
    const __mmask16 m = simd::tail_mask(Co - c);
    const __m512 b = bias ? simd::load(bias + c, m) : _mm512_setzero_ps();
    __m512 q[9];
#pragma GCC unroll 9
    for (int i = 0; i < 9; ++i) q[i] = points(i, c, m);  // unrolled: q stays in registers
    __m512 s0[3], s1[3];                                 // A^T M: the two output rows
    for (int j = 0; j < 3; ++j) {
      s0[j] = _mm512_add_ps(q[j], q[3 + j]);
      s1[j] = _mm512_add_ps(q[3 + j], q[6 + j]);
    }
    const __m512 y[4] = {_mm512_add_ps(s0[0], s0[1]), _mm512_add_ps(s0[1], s0[2]),
                         _mm512_add_ps(s1[0], s1[1]), _mm512_add_ps(s1[1], s1[2])};
    for (int k = 0; k < 4; ++k)
      if (out[k]) store_as(out[k] + c, _mm512_add_ps(y[k], b), m);
  }
}

// Phase p of tiles [k0, k0 + count) from M [9, tiles, Co] (through `M`) into y [N, 2H, 2W, Co].
template <class TY, class Points>
SDC_AVX512_BF16 void output_chunk(const Points& M, const WinogradUpsampleConv::Shape& s, int p,
                                  int64_t k0, int64_t count, const float* bias, TY* y) {
  const int64_t H2 = 2 * s.H, W2 = 2 * s.W;
  for (int64_t t = 0; t < count; ++t) {
    const WinogradTile tp = winograd_tile(k0 + t, s.H, s.W);
    TY* o[4] = {};
    for (int k = 0; k < 4; ++k) {
      const int64_t i = 2 * tp.ty + k / 2, j = 2 * tp.tx + k % 2;  // small position
      if (i < s.H && j < s.W) o[k] = y + ((tp.n * H2 + 2 * i + p / 2) * W2 + 2 * j + p % 2) * s.Co;
    }
    output_tile(M.at(t, s.Co), s.Co, bias, o);
  }
}

template <class Points>
void output_chunk_as(const Points& M, const WinogradUpsampleConv::Shape& s, int p, int64_t k0,
                     int64_t count, const float* bias, void* y, DType yt) {
  if (yt == DType::BF16)
    output_chunk(M, s, p, k0, count, bias, static_cast<uint16_t*>(y));
  else
    output_chunk(M, s, p, k0, count, bias, static_cast<float*>(y));
}

// Every kernel's 36 phase points in the calling thread's staging buffer: as [36, Ci, Co] (each
// point's matmul operand) or, `rows`, as [36 * Co, Ci] (a row per point and output channel).
TensorRef staged_phase_points(const TensorRef& w, bool rows) {
  check_3x3_kernel(w, "Winograd upsample convolution weight");
  const int64_t Co = w.shape[0], Ci = w.shape[1];
  thread_local std::vector<float> staging;
  staging.resize(size_t(36 * Ci * Co));
  float* out = staging.data();
  for_each_3x3_kernel(w, [out, Co, Ci, rows](int64_t o, int64_t i, const float* k) {
    for (int p = 0; p < 4; ++p) {
      float g[4];  // the phase's 2x2 kernel
      upsample_phase_kernel(k, p / 2, p % 2, g);
      const float gt[3][2] = {{g[0], g[1]}, {g[0] + g[2], g[1] + g[3]}, {g[2], g[3]}};  // G g
      for (int r = 0; r < 3; ++r) {                                                     // (G g) G^T
        const float u[3] = {gt[r][0], gt[r][0] + gt[r][1], gt[r][1]};
        for (int c = 0; c < 3; ++c) {
          const size_t q = size_t(9 * p + 3 * r + c);
          out[rows ? (q * Co + o) * Ci + i : (q * Ci + i) * Co + o] = u[c];
        }
      }
    }
  });
  return staged_tensor(staging, rows ? Shape{36 * Co, Ci} : Shape{36, Ci, Co}, w.source);
}

// The transforms' ISA (AVX-512) and the shape rule both product types share (winograd_upsample.h).
bool upsample_shape_pays(int64_t N, int64_t H, int64_t W, int64_t Ci, int64_t Co, int threads,
                         int64_t min_channels) {
  return use_avx512_kernels() && Ci >= min_channels && Co >= min_channels &&
         winograd_fills_threads(winograd_tile_count(N, H, W), threads);
}

}  // namespace

bool winograd_upsample_pays(int64_t N, int64_t H, int64_t W, int64_t Ci, int64_t Co, int threads) {
  return cpu_features().avx512_bf16 && upsample_shape_pays(N, H, W, Ci, Co, threads, 64) &&
         Ci <= 256 && WinogradProducts::stacks_kernels(WinogradProducts::Type::Bf16);
}

bool winograd_upsample_int8_pays(int64_t N, int64_t H, int64_t W, int64_t Ci, int64_t Co,
                                 int threads) {
  return upsample_shape_pays(N, H, W, Ci, Co, threads, 128) && WinogradProducts::int8_available();
}

bool winograd_upsample_f32_pays(int64_t N, int64_t H, int64_t W, int64_t Ci, int64_t Co,
                                int threads) {
  return winograd_f32::available() && Ci % 8 == 0 && Co % 8 == 0 && Ci >= 64 && Co >= 64 &&
         winograd_fills_threads(winograd_tile_count(N, H, W), threads) &&
         WinogradProducts::stacks_kernels(WinogradProducts::Type::F32);
}

TensorRef winograd_upsample_weights(const TensorRef& w) {
  return staged_phase_points(w, false);
}

TensorRef winograd_upsample_weight_rows(const TensorRef& w) {
  return staged_phase_points(w, true);
}

WinogradUpsampleConv::WinogradUpsampleConv(const Shape& s, const dnnl::engine& engine, int threads,
                                           Type type, std::optional<DType> input)
    : s_(s),
      threads_(std::max(1, threads)),
      tiles_(chunk_tiles(s, threads_, type)),
      int8_(type == Type::Int8),
      f32_(type == Type::F32),
      f32_input_(winograd_input(type, input, "winograd_upsample.cpp") == DType::F32),
      products_(36, 9, tiles_, s.Ci, s.Co, engine, type),
      zeros_(size_t(s.Ci), 0.f) {
  if (f32_)
    check_f32_winograd_channels(s.Ci, s.Co, "winograd_upsample.cpp", "f32 Winograd channels");
  thread_bytes_ = products_.thread_scratch_bytes();
  if (int8_) {  // then a tile's f32 rows and the chunk's scales
    rows_at_ = thread_bytes_;
    scales_at_ = rows_at_ + arena_aligned(size_t(9 * s.Ci) * sizeof(float));
    thread_bytes_ = scales_at_ + arena_aligned(size_t(9 * tiles_) * sizeof(float));
  }
}

void WinogradUpsampleConv::run(const void* x, const void* u, const float* bias, void* y, DType yt,
                               void* scratch, const Int8Kernels* int8) const {
  if (int8_ != (int8 != nullptr))
    throw Error("winograd_upsample.cpp", "int8 kernel scales", int8_ ? "given" : "none",
                int8 ? "given" : "none");
  if (f32_ && yt != DType::F32)
    throw Error("winograd_upsample.cpp", "f32 Winograd output", "f32", std::string(dtype_name(yt)));
  check_winograd_output(yt, "winograd_upsample.cpp");
  const auto* xb = static_cast<const uint16_t*>(x);
  const auto* zb = reinterpret_cast<const uint16_t*>(zeros_.data());
  const Shape s = s_;
  const int64_t total = winograd_tile_count(s.N, s.H, s.W), tiles = tiles_;
  const int64_t chunks = (total + tiles - 1) / tiles;
#pragma omp parallel num_threads(threads_)
  {
    // Inside this parallel region oneDNN runs the products on the calling thread alone. The four
    // phases share the thread's V and M.
    auto* mine = static_cast<uint8_t*>(scratch) + thread_bytes_ * size_t(omp_get_thread_num());
    std::vector<WinogradProducts::Bound> phase;
    for (int p = 0; p < 4; ++p) phase.push_back(products_.bind(u, mine, 9 * p));
    void* V = phase[0].tiles();
    const void* M = phase[0].products();
    const size_t ms = size_t(tiles * s.Co);
    auto* scales = reinterpret_cast<float*>(mine + scales_at_);
#pragma omp for schedule(static)
    for (int64_t k = 0; k < chunks; ++k) {
      const int64_t k0 = k * tiles, count = std::min(tiles, total - k0);
      for (int p = 0; p < 4; ++p) {
        if (f32_) {
          winograd_f32::upsample_input_chunk(static_cast<const float*>(x), zeros_.data(), s.H, s.W,
                                             s.Ci, p, k0, count, tiles, static_cast<float*>(V));
          phase[size_t(p)].run();
          winograd_f32::upsample_output_chunk(static_cast<const float*>(M), ms, s.H, s.W, s.Co, p,
                                              k0, count, bias, static_cast<float*>(y));
        } else if (int8) {
          input_chunk_int8(x, f32_input_, zeros_.data(), s, p, k0, count, tiles,
                           reinterpret_cast<float*>(mine + rows_at_), static_cast<uint8_t*>(V),
                           scales);
          phase[size_t(p)].run();
          const WinogradInt8Points P{static_cast<const int32_t*>(M), ms, scales, 9, int8, 9 * p};
          output_chunk_as(P, s, p, k0, count, bias, y, yt);
        } else {
          input_chunk(xb, zb, s, p, k0, count, tiles, static_cast<uint16_t*>(V));
          phase[size_t(p)].run();
          output_chunk_as(WinogradF32Points{static_cast<const float*>(M), ms}, s, p, k0, count,
                          bias, y, yt);
        }
      }
    }
  }
}

}  // namespace sdc::cpu
