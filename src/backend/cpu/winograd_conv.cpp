// Winograd F(2x2, 3x3) convolution (winograd_conv.h): the kernel transform at planning, the
// input and output transforms in AVX-512 (f32 plans': winograd_f32.cpp, AVX2), and the per-thread
// chunks (or the point split) around oneDNN's products.
//
// With d a 4x4 input tile, g the 3x3 kernel and Y the 2x2 output block:
//   Y = A^T [ (G g G^T) .* (B^T d B) ] A
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
//   A^T = [1 1 1 0; 0 1 -1 -1].
// Only additions in B and A: the input transform rounds sums of four inputs to bf16 once (int8:
// quantises them to u8 codes, a scale per tile and point), and the output transform works on the
// f32 products (int8: the s32 ones, scaled back first).
#include "backend/cpu/winograd_conv.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/kernel_transform.h"
#include "backend/cpu/memory_plan.h"
#include "backend/cpu/simd.h"
#include "backend/cpu/winograd_common.h"
#include "backend/cpu/winograd_f32.h"
#include "common/error.h"

namespace sdc::cpu {

namespace {

// Tiles per chunk. Every chunk reads all 16 transformed kernels (2-8 MiB at 256-512 channels),
// so the chunk's length is their reuse: while the products were one batched matmul, which copied
// the kernels into its blocked layout on every call, 256 tiles made the VAE's Winograd layers
// ~10 % faster than 32-64 (Zen 5, 2 threads). With the kernels packed once (WinogradProducts)
// the products' 16 x Co values per tile set the length instead (winograd_chunk_most); fewer
// tiles where that leaves under 4 chunks per thread, for the balance of many-core CPUs (and
// their scratch).
int64_t chunk_tiles(const WinogradConv::Shape& s, int threads, WinogradConv::Type type) {
  return winograd_chunk_tiles(winograd_tile_count(s.N, s.H, s.W), threads,
                              winograd_chunk_most(type, 16, s.Co));
}

// Split products: the 16 points dealt out in runs of this many (2 threads: 8 each).
int64_t points_per_thread(int threads) {
  return (16 + threads - 1) / threads;
}

// Stores point k of a tile's transform; kTrack: and folds |value| into top[k].
template <bool kTrack, class TV>
SDC_AVX512_BF16 static inline __attribute__((always_inline)) void put_point(TV* p, __m512 v,
                                                                            __mmask16 m,
                                                                            __m512* top, int k) {
  store_as(p, v, m);
  if constexpr (kTrack) top[k] = _mm512_max_ps(top[k], _mm512_abs_ps(v));
}

// B^T d B for the 16 channels at c of the tiles' 4x4 pixels `px` (row-major; bf16 bits or f32),
// into V's 16 rows (row stride `vs` elements), bf16 or f32; kTrack: each point's absolute maximum
// into top[16] (masked-off lanes are 0).
template <bool kTrack = false, class TX, class TV>
SDC_AVX512_BF16 void input_tile(const TX* const px[16], int64_t c, __mmask16 m, TV* v, size_t vs,
                                __m512* top = nullptr) {
  __m512 d[16];
  for (int i = 0; i < 16; ++i) d[i] = simd::load(px[i] + c, m);
  __m512 t[16];  // B^T d: combinations of rows
  for (int j = 0; j < 4; ++j) {
    t[j] = _mm512_sub_ps(d[j], d[8 + j]);
    t[4 + j] = _mm512_add_ps(d[4 + j], d[8 + j]);
    t[8 + j] = _mm512_sub_ps(d[8 + j], d[4 + j]);
    t[12 + j] = _mm512_sub_ps(d[4 + j], d[12 + j]);
  }
  for (int r = 0; r < 4; ++r) {  // (B^T d) B: combinations of columns
    const __m512* q = t + 4 * r;
    TV* row = v + 4 * r * vs + c;
    put_point<kTrack>(row, _mm512_sub_ps(q[0], q[2]), m, top, 4 * r);
    put_point<kTrack>(row + vs, _mm512_add_ps(q[1], q[2]), m, top, 4 * r + 1);
    put_point<kTrack>(row + 2 * vs, _mm512_sub_ps(q[2], q[1]), m, top, 4 * r + 2);
    put_point<kTrack>(row + 3 * vs, _mm512_sub_ps(q[1], q[3]), m, top, 4 * r + 3);
  }
}

// One chunk's input transform: tiles [k0, k0 + count) into V [16, tiles, Ci]; the rest of V's
// tiles zeroed (their products are never read).
// `v_tiles`: the tiles V holds per point (its point stride), `tiles` or more.
SDC_AVX512_BF16 void input_chunk(const uint16_t* x, const uint16_t* zeros,
                                 const WinogradConv::Shape& s, int64_t k0, int64_t count,
                                 int64_t tiles, int64_t v_tiles, uint16_t* V) {
  const size_t vs = size_t(v_tiles * s.Ci);  // a point's rows
  for (int64_t t = 0; t < tiles; ++t) {
    if (t >= count) {
      for (int i = 0; i < 16; ++i)
        std::memset(V + i * vs + t * s.Ci, 0, size_t(s.Ci) * sizeof(uint16_t));
      continue;
    }
    const uint16_t* px[16];
    winograd_tile_pixels(x, zeros, s.H, s.W, s.Ci, winograd_tile(k0 + t, s.H, s.W), px);
    for (int64_t c = 0; c < s.Ci; c += 16)
      input_tile(px, c, simd::tail_mask(s.Ci - c), V + t * s.Ci, vs);
  }
}

// One chunk's input transform for the int8 products (quantise_chunk_points) of x (bf16 bits or
// f32): V [16, tiles, Ci], scales [tiles, 16] (a scale per tile and point, where the direct int8
// convolution has one per input tensor).
// `v_tiles`: the tiles V holds per point (its point stride), `tiles` or more.
template <class T>
SDC_AVX512_BF16 void input_chunk_int8(const T* x, const T* zeros, const WinogradConv::Shape& s,
                                      int64_t k0, int64_t count, int64_t tiles, int64_t v_tiles,
                                      float* rows, uint8_t* V, float* scales) {
  const size_t rs = size_t(s.Ci);
  quantise_chunk_points<16>(
      x, zeros, s.H, s.W, s.Ci, k0, count, tiles, size_t(v_tiles * s.Ci), rows, V, scales,
      [rs](const T* const px[16], int64_t c, __mmask16 m, float* r, __m512* top)
          SDC_AVX512_BF16 { input_tile<true>(px, c, m, r, rs, top); });
}
// The same over x of the convolution's input type (f32 where `f32`, else bf16).
void input_chunk_int8(const void* x, bool f32, const float* zeros, const WinogradConv::Shape& s,
                      int64_t k0, int64_t count, int64_t tiles, int64_t v_tiles, float* rows,
                      uint8_t* V, float* scales) {
  with_activations(x, f32, zeros, [&](const auto* xt, const auto* zt) {
    input_chunk_int8(xt, zt, s, k0, count, tiles, v_tiles, rows, V, scales);
  });
}

template <class TY, class TA, class Points>
SDC_AVX512_BF16 void output_block(const Points& points, int64_t Co, const float* bias,
                                  const TA* const add[4], TY* const out[4], bool relu) {
  for (int64_t c = 0; c < Co; c += 16) {
    const __mmask16 m = simd::tail_mask(Co - c);
    __m512 p[16];
    // Unrolled, so that p stays in registers (the loop kept it on the stack).
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) p[i] = points(i, c, m);
    __m512 s0[4], s1[4];  // A^T M: the two output rows
    for (int j = 0; j < 4; ++j) {
      s0[j] = _mm512_add_ps(_mm512_add_ps(p[j], p[4 + j]), p[8 + j]);
      s1[j] = _mm512_sub_ps(_mm512_sub_ps(p[4 + j], p[8 + j]), p[12 + j]);
    }
    const __m512 b = bias ? simd::load(bias + c, m) : _mm512_setzero_ps();
    __m512 y[4] = {_mm512_add_ps(_mm512_add_ps(s0[0], s0[1]), s0[2]),
                   _mm512_sub_ps(_mm512_sub_ps(s0[1], s0[2]), s0[3]),
                   _mm512_add_ps(_mm512_add_ps(s1[0], s1[1]), s1[2]),
                   _mm512_sub_ps(_mm512_sub_ps(s1[1], s1[2]), s1[3])};
    for (int k = 0; k < 4; ++k) {
      if (!out[k]) continue;  // a block hanging over an odd image's edge
      __m512 v = _mm512_add_ps(y[k], b);
      if (add[k]) v = _mm512_add_ps(v, simd::load(add[k] + c, m));
      if (relu) v = _mm512_max_ps(v, _mm512_setzero_ps());  // after the residual (TAESD's blocks)
      store_as(out[k] + c, v, m);
    }
  }
}

// One chunk's output transform: the blocks of tiles [k0, k0 + count).
template <class TY, class TA, class Points>
SDC_AVX512_BF16 void output_chunk(const Points& M, const WinogradConv::Shape& s, int64_t k0,
                                  int64_t count, const float* bias, const TA* add, TY* y,
                                  bool relu) {
  for (int64_t t = 0; t < count; ++t) {
    const WinogradTile p = winograd_tile(k0 + t, s.H, s.W);
    const TA* a[4] = {};
    TY* o[4] = {};
    for (int k = 0; k < 4; ++k) {
      const int64_t oy = 2 * p.ty + k / 2, ox = 2 * p.tx + k % 2;
      if (oy >= s.H || ox >= s.W) continue;
      const size_t at = size_t(((p.n * s.H + oy) * s.W + ox) * s.Co);
      o[k] = y + at;
      if (add) a[k] = add + at;
    }
    output_block(M.at(t, s.Co), s.Co, bias, a, o, relu);
  }
}

template <class TY, class Points>
void output_chunk_as(const Points& M, const WinogradConv::Shape& s, int64_t k0, int64_t count,
                     const float* bias, WinogradConv::Addend add, void* y, bool relu) {
  TY* yt = static_cast<TY*>(y);
  if (!add.data)
    output_chunk<TY, float>(M, s, k0, count, bias, nullptr, yt, relu);
  else if (add.type == DType::BF16)
    output_chunk(M, s, k0, count, bias, static_cast<const uint16_t*>(add.data), yt, relu);
  else
    output_chunk(M, s, k0, count, bias, static_cast<const float*>(add.data), yt, relu);
}

template <class Points>
void output_chunk_as(const Points& M, const WinogradConv::Shape& s, int64_t k0, int64_t count,
                     const float* bias, WinogradConv::Addend add, void* y, DType yt, bool relu) {
  if (yt == DType::BF16)
    output_chunk_as<uint16_t>(M, s, k0, count, bias, add, y, relu);
  else
    output_chunk_as<float>(M, s, k0, count, bias, add, y, relu);
}

// The image-size rule every product type shares (winograd_conv.h): at least 16x16 pixels, and
// two chunks a thread or enough tiles for the products split by point.
bool winograd_tiles_pay(int64_t N, int64_t H, int64_t W, int threads) {
  const int64_t tiles = winograd_tile_count(N, H, W);
  return H * W >= 16 * 16 &&
         (winograd_fills_threads(tiles, threads) || winograd_splits_points(tiles, threads));
}
// The AVX-512 transforms, which the bf16 and int8 products share, and their channels.
bool winograd_shape_pays(int64_t N, int64_t H, int64_t W, int64_t Ci, int64_t Co, int threads,
                         int64_t min_channels) {
  return use_avx512_kernels() && Ci >= min_channels && Co >= min_channels &&
         winograd_tiles_pay(N, H, W, threads);
}

}  // namespace

bool winograd_pays(int64_t N, int64_t H, int64_t W, int64_t Ci, int64_t Co, int threads) {
  // From 64 channels (TAESD's): its 3x3 64 -> 64 convolutions on a Zen 4, 2 threads, 1.36x
  // faster than oneDNN's direct bf16 ones at 256^2 and 512^2, TAESD's decode 323 -> 242-264 ms.
  return cpu_features().avx512_bf16 && winograd_shape_pays(N, H, W, Ci, Co, threads, 64) &&
         WinogradProducts::stacks_kernels(WinogradProducts::Type::Bf16);
}

bool winograd_f32_pays(int64_t N, int64_t H, int64_t W, int64_t Ci, int64_t Co, int threads) {
  return winograd_f32::available() && Ci % 8 == 0 && Co % 8 == 0 && Ci >= 64 && Co >= 64 &&
         winograd_tiles_pay(N, H, W, threads) &&
         WinogradProducts::stacks_kernels(WinogradProducts::Type::F32);
}

bool winograd_int8_pays(int64_t N, int64_t H, int64_t W, int64_t Ci, int64_t Co, int threads) {
  // Too few tiles for two chunks a thread (the UNet's 16x16 x 1280 level at batch 1 on 2
  // threads): the products split by point (winograd_splits_points). One chunk of 32 tiles a
  // thread instead measured only 2 % faster per step (473 -> 463 ms, Zen 5), each thread reading
  // every kernel. Its kernels are 16/9 the bytes of the direct ones (+144 MiB).
  // Not below 128 channels: at TAESD's 64 the direct int8 convolution is faster (its decode 177-190
  // against 241-261 ms with Winograd there, Zen 4).
  return winograd_shape_pays(N, H, W, Ci, Co, threads, 128) && WinogradProducts::int8_available();
}

namespace {

// U = G g G^T of every [3, 3] kernel, each of its 16 points handed to `put(point, o, i, value)`.
template <class Put>
void transform_kernels(const TensorRef& w, Put put) {
  for_each_3x3_kernel(w, [&put](int64_t o, int64_t i, const float* g) {
    float gt[4][3];  // G g
    for (int c = 0; c < 3; ++c) {
      gt[0][c] = g[c];
      gt[1][c] = 0.5f * (g[c] + g[3 + c] + g[6 + c]);
      gt[2][c] = 0.5f * (g[c] - g[3 + c] + g[6 + c]);
      gt[3][c] = g[6 + c];
    }
    for (int r = 0; r < 4; ++r) {  // (G g) G^T
      const float u[4] = {gt[r][0], 0.5f * (gt[r][0] + gt[r][1] + gt[r][2]),
                          0.5f * (gt[r][0] - gt[r][1] + gt[r][2]), gt[r][2]};
      for (int c = 0; c < 4; ++c) put(4 * r + c, o, i, u[c]);
    }
  });
}

// Every kernel's U in the calling thread's staging buffer: as [16, Ci, Co] (each point's matmul
// operand) or, `rows`, as [16 * Co, Ci] (a row per point and output channel).
TensorRef staged_kernel_points(const TensorRef& w, bool rows) {
  check_3x3_kernel(w, "Winograd convolution weight");
  const int64_t Co = w.shape[0], Ci = w.shape[1];
  thread_local std::vector<float> staging;
  staging.resize(size_t(16 * Ci * Co));
  float* out = staging.data();
  transform_kernels(w, [out, Co, Ci, rows](int p, int64_t o, int64_t i, float u) {
    out[rows ? (size_t(p) * Co + o) * Ci + i : (size_t(p) * Ci + i) * Co + o] = u;
  });
  return staged_tensor(staging, rows ? Shape{16 * Co, Ci} : Shape{16, Ci, Co}, w.source);
}

}  // namespace

TensorRef winograd_weights(const TensorRef& w) {
  return staged_kernel_points(w, false);
}

TensorRef winograd_weight_rows(const TensorRef& w) {
  return staged_kernel_points(w, true);
}

WinogradConv::WinogradConv(const Shape& s, const dnnl::engine& engine, int threads, Type type,
                           std::optional<DType> input)
    : s_(s),
      threads_(std::max(1, threads)),
      split_(winograd_splits_points(winograd_tile_count(s.N, s.H, s.W), threads_)),
      tiles_(split_ ? winograd_tile_count(s.N, s.H, s.W) : chunk_tiles(s, threads_, type)),
      int8_(type == Type::Int8),
      f32_(type == Type::F32),
      f32_input_(winograd_input(type, input, "winograd_conv.cpp") == DType::F32),
      products_(16, split_ ? points_per_thread(threads_) : 16, tiles_, s.Ci, s.Co, engine, type),
      zeros_(size_t(s.Ci), 0.f) {
  if (f32_) check_f32_winograd_channels(s.Ci, s.Co, "winograd_conv.cpp", "f32 Winograd channels");
  const size_t rows = arena_aligned(size_t(16 * s.Ci) * sizeof(float));  // a tile's, int8
  if (split_) {  // V u8, bf16 or f32, the int8 scales, M s32 or f32
    rows_at_ = arena_aligned(products_.pad_bytes());
    thread_bytes_ = rows_at_ + (int8_ ? rows : 0);
    shared_scales_at_ = arena_aligned(size_t(16 * tiles_ * s.Ci) * winograd_tile_value_bytes(type));
    shared_m_at_ =
        shared_scales_at_ + (int8_ ? arena_aligned(size_t(16 * tiles_) * sizeof(float)) : 0);
    shared_bytes_ = shared_m_at_ + arena_aligned(size_t(16 * tiles_ * s.Co) * 4);
    return;
  }
  thread_bytes_ = products_.thread_scratch_bytes();
  if (int8_) {  // then the tile's f32 rows and the chunk's scales
    rows_at_ = thread_bytes_;
    scales_at_ = rows_at_ + rows;
    thread_bytes_ = scales_at_ + arena_aligned(size_t(16 * tiles_) * sizeof(float));
  }
}

void WinogradConv::run_split(const void* x, const void* u, const float* bias, Addend addend,
                             void* y, DType yt, void* scratch, const Int8Kernels* int8,
                             bool relu) const {
  const Shape s = s_;
  const int64_t T = tiles_, per = points_per_thread(threads_);
  auto* shared = static_cast<uint8_t*>(scratch) + thread_bytes_ * size_t(threads_);
  const size_t v_size = winograd_tile_value_bytes(products_.type());  // u8, bf16 or f32
  const auto* xb = static_cast<const uint16_t*>(x);
  const auto* zb = reinterpret_cast<const uint16_t*>(zeros_.data());
  uint8_t* V = shared;
  auto* scales = reinterpret_cast<float*>(shared + shared_scales_at_);
  uint8_t* M = shared + shared_m_at_;  // s32 or f32
#pragma omp parallel num_threads(threads_)
  {
    const int me = omp_get_thread_num(), n = omp_get_num_threads();
    auto* mine = static_cast<uint8_t*>(scratch) + thread_bytes_ * size_t(me);
    // This thread's tiles, for both transforms.
    const int64_t k0 = T * me / n, count = T * (me + 1) / n - k0;
    if (count > 0 && int8)
      input_chunk_int8(x, f32_input_, zeros_.data(), s, k0, count, count, T,
                       reinterpret_cast<float*>(mine + rows_at_), V + k0 * s.Ci, scales + 16 * k0);
    else if (count > 0 && f32_)
      winograd_f32::input_chunk(static_cast<const float*>(x), zeros_.data(), s.H, s.W, s.Ci, k0,
                                count, count, T, reinterpret_cast<float*>(V) + k0 * s.Ci);
    else if (count > 0)
      input_chunk(xb, zb, s, k0, count, count, T, reinterpret_cast<uint16_t*>(V) + k0 * s.Ci);
#pragma omp barrier
    // Inside this parallel region oneDNN runs the products on the calling thread alone.
    for (int64_t first = me * per; first < 16; first += int64_t(n) * per) {
      const int64_t points = std::min<int64_t>(per, 16 - first);
      products_
          .bind(u, mine, V + size_t(first * T * s.Ci) * v_size, M + size_t(first * T * s.Co) * 4,
                first, points)
          .run();
    }
#pragma omp barrier
    if (count > 0 && int8) {
      const WinogradInt8Points P{reinterpret_cast<const int32_t*>(M) + k0 * s.Co, size_t(T * s.Co),
                                 scales + 16 * k0, 16, int8};
      output_chunk_as(P, s, k0, count, bias, addend, y, yt, relu);
    } else if (count > 0 && f32_) {
      winograd_f32::output_chunk(
          reinterpret_cast<const float*>(M) + k0 * s.Co, size_t(T * s.Co), s.H, s.W, s.Co, k0,
          count, bias, static_cast<const float*>(addend.data), static_cast<float*>(y), relu);
    } else if (count > 0) {
      const WinogradF32Points P{reinterpret_cast<const float*>(M) + k0 * s.Co, size_t(T * s.Co)};
      output_chunk_as(P, s, k0, count, bias, addend, y, yt, relu);
    }
  }
}

void WinogradConv::run(const void* x, const void* u, const float* bias, Addend addend, void* y,
                       DType yt, void* scratch, const Int8Kernels* int8, bool relu) const {
  if (int8_ != (int8 != nullptr))
    throw Error("winograd_conv.cpp", "int8 kernel scales", int8_ ? "given" : "none",
                int8 ? "given" : "none");
  if (f32_ && (yt != DType::F32 || (addend.data && addend.type != DType::F32)))
    throw Error("winograd_conv.cpp", "f32 Winograd output and residual", "f32",
                std::string(dtype_name(yt)) + " output, " +
                    std::string(addend.data ? dtype_name(addend.type) : "no") + " residual");
  check_winograd_output(yt, "winograd_conv.cpp");
  if (split_) {
    run_split(x, u, bias, addend, y, yt, scratch, int8, relu);
    return;
  }
  const Shape s = s_;
  const int64_t total = winograd_tile_count(s.N, s.H, s.W), tiles = tiles_;
  const int64_t chunks = (total + tiles - 1) / tiles;
  const auto* xb = static_cast<const uint16_t*>(x);
  const auto* zb = reinterpret_cast<const uint16_t*>(zeros_.data());
#pragma omp parallel num_threads(threads_)
  {
    // Inside this parallel region oneDNN runs the products on the calling thread alone.
    auto* mine = static_cast<uint8_t*>(scratch) + thread_bytes_ * size_t(omp_get_thread_num());
    WinogradProducts::Bound products = products_.bind(u, mine);
    const size_t ms = size_t(tiles * s.Co);
#pragma omp for schedule(static)
    for (int64_t k = 0; k < chunks; ++k) {
      const int64_t k0 = k * tiles, count = std::min(tiles, total - k0);
      if (f32_) {
        winograd_f32::input_chunk(static_cast<const float*>(x), zeros_.data(), s.H, s.W, s.Ci, k0,
                                  count, tiles, tiles, static_cast<float*>(products.tiles()));
        products.run();
        winograd_f32::output_chunk(static_cast<const float*>(products.products()), ms, s.H, s.W,
                                   s.Co, k0, count, bias, static_cast<const float*>(addend.data),
                                   static_cast<float*>(y), relu);
      } else if (int8) {
        auto* scales = reinterpret_cast<float*>(mine + scales_at_);
        input_chunk_int8(x, f32_input_, zeros_.data(), s, k0, count, tiles, tiles,
                         reinterpret_cast<float*>(mine + rows_at_),
                         static_cast<uint8_t*>(products.tiles()), scales);
        products.run();
        const WinogradInt8Points M{static_cast<const int32_t*>(products.products()), ms, scales, 16,
                                   int8};
        output_chunk_as(M, s, k0, count, bias, addend, y, yt, relu);
      } else {
        input_chunk(xb, zb, s, k0, count, tiles, tiles, static_cast<uint16_t*>(products.tiles()));
        products.run();
        const WinogradF32Points M{static_cast<const float*>(products.products()), ms};
        output_chunk_as(M, s, k0, count, bias, addend, y, yt, relu);
      }
    }
  }
}

}  // namespace sdc::cpu
