// What the two Winograd convolutions share (winograd_conv.h: F(2x2, 3x3); winograd_upsample.h:
// F(2x2, 2x2) per phase of an upsampling): their products, n matmuls
// [tiles, Ci] bf16 x [Ci, Co] -> [tiles, Co] f32 (for int8 plans u8 x s8 -> s32, for f32 plans
// f32 x f32 -> f32) run by the
// calling thread over consecutive slices of the transformed tiles and of a buffer that stacks the
// n transformed kernels, each packed once in the blocked layout oneDNN picks for its product; and
// the transforms' rounding store.
//
// (oneDNN 2.6's batched bf16 matmul [n, tiles, Ci] x [n, Ci, Co] takes its kernels only as plain
// rows and copies them into its blocked layout on every call: per chunk of tiles, all n kernels.)
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "backend/cpu/simd.h"
#include "common/dtype.h"

namespace sdc::cpu {

class WinogradProducts {
 public:
  enum class Type {
    Bf16,  // V bf16, kernels bf16, M f32
    Int8,  // V u8, kernels s8, M s32 (the scales are the transforms' business)
    F32,   // V, kernels and M f32
  };
  // n kernels, `at_once` of them run per chunk of `tiles` tiles.
  WinogradProducts(int64_t n, int64_t at_once, int64_t tiles, int64_t Ci, int64_t Co,
                   const dnnl::engine& engine, Type type = Type::Bf16);

  // Whether oneDNN packs this type's product kernels here in a plain blocked layout, which the
  // stacked kernels need (probed once per type on a small shape: the layout follows the ISA). A
  // layout with extras (compensation, scale adjustment) turns Winograd off instead of failing the
  // plan.
  static bool stacks_kernels(Type type);
  // Whether int8 products run here at all: a VNNI dot product for oneDNN (its effective ISA
  // follows DNNL_MAX_CPU_ISA, so a cap below VNNI turns them off too) and stacked int8 kernels.
  static bool int8_available();

  Type type() const { return type_; }
  // The kernels' layout: [n, Ci, Co] (bf16 or s8), n blocked [Ci, Co] kernels one after another.
  const dnnl::memory::desc& weights_desc() const { return weights_md_; }
  // One thread's scratch (a multiple of 64 bytes): oneDNN's, then the tiles V [at_once, tiles, Ci],
  // then the products M [at_once, tiles, Co].
  size_t thread_scratch_bytes() const { return v_at_ + v_bytes_ + m_bytes_; }

  // oneDNN's scratch for one product: the first bytes of a thread's scratch.
  size_t pad_bytes() const { return v_at_; }

  // The products [first, first + at_once) over the V and M of a thread's scratch and the packed
  // kernels u: made once per thread, run once per chunk.
  class Bound {
   public:
    void* tiles() const { return V_; }  // V, for the input transform to fill
    const void* products() const { return M_; }
    void run();

   private:
    friend class WinogradProducts;
    Bound(const WinogradProducts& p, const dnnl::engine& engine) : p_(&p), stream_(engine) {}
    const WinogradProducts* p_;
    dnnl::stream stream_;
    void* V_ = nullptr;
    void* M_ = nullptr;
    std::vector<std::unordered_map<int, dnnl::memory>> args_;
  };
  Bound bind(const void* u, void* thread_scratch, int64_t first = 0) const;
  // The products [first, first + count) (count <= at_once) over the caller's V [count, tiles, Ci]
  // and M [count, tiles, Co], oneDNN's scratch at `pad` (pad_bytes()).
  Bound bind(const void* u, void* pad, void* V, void* M, int64_t first, int64_t count) const;

 private:
  int64_t at_once_, tiles_, Ci_, Co_;
  Type type_;
  dnnl::engine engine_;
  dnnl::matmul::primitive_desc pd_;  // one product
  dnnl::matmul prim_;
  size_t point_bytes_;                           // one packed kernel
  dnnl::memory::desc weights_md_;                // all n of them
  size_t v_at_ = 0, v_bytes_ = 0, m_bytes_ = 0;  // thread scratch: oneDNN's pad, V, M
};

// Whether a Winograd convolution of this type reads activations of type `input`: bf16 or f32 for
// Int8 products, bf16 for Bf16 ones, f32 for F32 ones.
bool winograd_reads(WinogradProducts::Type type, DType input);
// The input type of a Winograd convolution of this type: `input`, or unset the type's own (f32 for
// F32 products, else bf16). Throws (naming `file`) unless winograd_reads it.
DType winograd_input(WinogradProducts::Type type, std::optional<DType> input, const char* file);
// Throws (naming `file`) for a BF16 output where the CPU lacks AVX-512 BF16 (the transforms' one
// BF16 instruction is that output's rounding).
void check_winograd_output(DType yt, const char* file);
// Throws (naming `file` and `key`) unless f32 transforms can take Ci -> Co channels: multiples of
// 8, the AVX2 transforms' lanes.
void check_f32_winograd_channels(int64_t Ci, int64_t Co, const char* file, const char* key);

// The kBlock x kBlock blocks (tiles) of N images of H x W pixels — 2x2 for F(2x2, 3x3), 4x4 for
// F(4x4, 3x3) — a block at an edge that no multiple of kBlock meets hanging over it.
template <int kBlock = 2>
inline int64_t winograd_tile_count(int64_t N, int64_t H, int64_t W) {
  return N * ((H + kBlock - 1) / kBlock) * ((W + kBlock - 1) / kBlock);
}
// Tiles per chunk: about a quarter of a thread's share (so that the threads stay balanced),
// from 32 up to `most`.
inline int64_t winograd_chunk_tiles(int64_t tiles, int threads, int64_t most) {
  return std::clamp<int64_t>(tiles / (4 * int64_t(std::max(1, threads))), 32, most);
}
// The most tiles a chunk takes when its products are `points` x Co values of 4 bytes per tile:
// about 1 MiB of them, which stays in a core's L2 from the products to the output transform
// (measured on a Zen 4, 1 MiB L2, 2 threads, BM_Conv3x3: 64 tiles against 256 took 256 channels
// at 256^2 92 against 107 ms in bf16, 512 at 128^2 49 against 60 ms in int8, 320 at 64^2 5.2
// against 5.9 ms in int8), from 64 (shorter chunks spend more on each product's call than they
// save) to 256 (at 64-128 channels each product is short: 256 stays faster there). f32 products
// (the AVX2 CPUs' path, measured on a Zen 3 with 256) keep 256.
inline int64_t winograd_chunk_most(WinogradProducts::Type type, int points, int64_t Co) {
  if (type == WinogradProducts::Type::F32) return 256;
  return std::clamp<int64_t>((int64_t(1) << 20) / (int64_t(points) * 4 * std::max<int64_t>(Co, 1)),
                             64, 256);
}
// Whether every thread gets two chunks of 32 tiles: fewer leave threads idle or the kernels'
// reuse too short for Winograd to pay.
inline bool winograd_fills_threads(int64_t tiles, int threads) {
  return tiles >= 64 * int64_t(std::max(1, threads));
}
// Whether the products (bf16 or int8) run split by point instead of by chunk: all tiles transformed
// together, each thread the products of its share of the 16 points over all of them (every
// transformed kernel read once, by one thread, and reused by every tile), then each thread the
// output blocks of its share of the tiles. Where chunks would be shorter than 64 tiles (every
// thread reading every kernel once per chunk): measured on 2 threads (Zen 5), the UNet's 16x16 x
// 1280 level at batch 1 (64 tiles, direct before: it could not fill the threads) 4.8 % of the
// step, its 32x32 x 640 level (256 tiles, chunks of 32) 42-44 -> 35-36.5 ms a step; its 64x64
// level (chunks of 128) 35-36.6 -> 36.2-41.4 ms (not split: the shared products, 21 MiB, leave
// the caches). At least 64 tiles, so that a kernel read from memory serves enough rows.
inline bool winograd_splits_points(int64_t tiles, int threads) {
  return tiles >= 64 && winograd_chunk_tiles(tiles, threads, 256) < 64;
}

// Bytes of one transformed value in V.
inline size_t winograd_tile_value_bytes(WinogradProducts::Type t) {
  return t == WinogradProducts::Type::Int8 ? 1 : t == WinogradProducts::Type::F32 ? 4 : 2;
}

// Tile k of N images of H x W pixels, numbered across rows and images: the kBlock x kBlock block
// of pixels (kBlock ty .. kBlock ty + kBlock - 1, likewise in x) of image n.
struct WinogradTile {
  int64_t n, ty, tx;
};
template <int kBlock = 2>
inline WinogradTile winograd_tile(int64_t k, int64_t H, int64_t W) {
  const int64_t th = (H + kBlock - 1) / kBlock, tw = (W + kBlock - 1) / kBlock;
  return {k / (th * tw), k / tw % th, k % tw};
}
// The (kBlock + 2)^2 pixels (row-major) of the input tile around tile t's kBlock x kBlock block in
// x [N, H, W, C] — 4x4 for F(2x2, 3x3), 6x6 for F(4x4, 3x3): rows kBlock ty - 1 .. kBlock ty +
// kBlock, columns likewise; `zeros` (C zeros) where it hangs over the image.
template <int kBlock = 2, class T>  // bf16 bits or f32
inline void winograd_tile_pixels(const T* x, const T* zeros, int64_t H, int64_t W, int64_t C,
                                 const WinogradTile& t, const T** px) {
  constexpr int kSide = kBlock + 2;
  for (int i = 0; i < kSide * kSide; ++i) {
    const int64_t iy = kBlock * t.ty - 1 + i / kSide, ix = kBlock * t.tx - 1 + i % kSide;
    px[i] = iy < 0 || iy >= H || ix < 0 || ix >= W ? zeros : x + ((t.n * H + iy) * W + ix) * C;
  }
}

// The transforms are compiled for AVX-512 BF16: its one-instruction f32 -> bf16 rounding (to
// nearest even, as simd::to_bf16) halves the bf16 input transforms' time. That store is the only
// BF16 instruction in them, and only bf16 activations reach it: the int8 products' transforms over
// f32 activations (int8 plans on AVX-512 CPUs without BF16, as Intel's Skylake-SP to Ice Lake) run
// on any AVX-512 CPU (winograd_int8_pays).
#define SDC_AVX512_BF16 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c,avx512bf16")))

SDC_AVX512_BF16 static inline __attribute__((always_inline)) void store_as(uint16_t* p, __m512 v,
                                                                           __mmask16 m) {
  _mm256_mask_storeu_epi16(p, m, reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v)));
}
SDC_AVX512_BF16 static inline __attribute__((always_inline)) void store_as(float* p, __m512 v,
                                                                           __mmask16 m) {
  _mm512_mask_storeu_ps(p, m, v);
}

// The int8 products' kernels: s8 per point and output channel, with their scales and the sums of
// their s8 values, [points, Co] each (the plan's weights).
struct WinogradInt8Kernels {
  const float* scales = nullptr;
  const int32_t* sums = nullptr;
  int64_t Co = 0;
};

// The permutation of 16 dwords that takes 4k + j to 4j + k (a 4 x 4 transpose of 128-bit lanes'
// elements), which lane_maxima and quantise_point_row end with.
SDC_AVX512_BF16 static inline __m512i lane_transpose_4x4() {
  return _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
}

// Lane i of the result = the largest lane of top[i], for n <= 16 vectors (lanes past n: 0). One
// transposing reduction, 15 maxima and 29 shuffles: 16 separate horizontal maxima, each followed
// by a scalar division, were a sixth of the int8 input transform's time at 128 channels.
SDC_AVX512_BF16 static inline __m512 lane_maxima(const __m512* top, int n) {
  __m512 v[16];
  for (int i = 0; i < 16; ++i) v[i] = i < n ? top[i] : _mm512_setzero_ps();
  __m512 a[8];  // 128-bit lanes 0, 1: v[2k] (halves folded), 2, 3: v[2k + 1]
  for (int k = 0; k < 8; ++k)
    a[k] = _mm512_max_ps(_mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0x44),
                         _mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0xEE));
  __m512 b[4];  // 128-bit lane j: four values whose largest is v[4k + j]'s
  for (int k = 0; k < 4; ++k)
    b[k] = _mm512_max_ps(_mm512_shuffle_f32x4(a[2 * k], a[2 * k + 1], 0x88),
                         _mm512_shuffle_f32x4(a[2 * k], a[2 * k + 1], 0xDD));
  const __m512 u0 = _mm512_max_ps(_mm512_unpacklo_ps(b[0], b[1]), _mm512_unpackhi_ps(b[0], b[1]));
  const __m512 u1 = _mm512_max_ps(_mm512_unpacklo_ps(b[2], b[3]), _mm512_unpackhi_ps(b[2], b[3]));
  // Lane 4j + k: v[4k + j]'s maximum.
  const __m512 w = _mm512_max_ps(_mm512_shuffle_ps(u0, u1, _MM_SHUFFLE(1, 0, 1, 0)),
                                 _mm512_shuffle_ps(u0, u1, _MM_SHUFFLE(3, 2, 3, 2)));
  return _mm512_permutexvar_ps(lane_transpose_4x4(), w);
}

// One point's transformed row of a tile (Ci f32 values) as u8 codes around 128 (symmetric,
// rounded to nearest even: |code - 128| <= 127) into q, `inv` = 127 / its absolute maximum (0
// when that is 0). 64 codes per store: the saturating down-conversion's masked store (vpmovusdb)
// is a slow instruction on AMD's cores. A scale per tile and point follows the values closely:
// the output transforms add and cancel products, so each must be as exact as it can be.
SDC_AVX512_BF16 static inline void quantise_point_row(const float* r, int64_t Ci, __m512 inv,
                                                      uint8_t* q) {
  // packs leave lane l's dwords as (c0, c1, c2, c3) lane l; the codes' order wants c_k lane l at
  // dword 4k + l.
  const __m512i order = lane_transpose_4x4();
  int64_t c = 0;
  for (; c + 64 <= Ci; c += 64) {
    __m512i v[4];
    for (int j = 0; j < 4; ++j)
      v[j] = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(r + c + 16 * j), inv));
    // |v| <= 127: the signed packs are exact, and flipping the top bit adds 128.
    const __m512i packed =
        _mm512_packs_epi16(_mm512_packs_epi32(v[0], v[1]), _mm512_packs_epi32(v[2], v[3]));
    _mm512_storeu_si512(q + c, _mm512_xor_si512(_mm512_permutexvar_epi32(order, packed),
                                                _mm512_set1_epi8(char(0x80))));
  }
  const __m512i zero_point = _mm512_set1_epi32(128);
  for (; c < Ci; c += 16) {
    const __mmask16 m = simd::tail_mask(Ci - c);
    const __m512i v = _mm512_add_epi32(
        _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, r + c), inv)), zero_point);
    _mm_mask_storeu_epi8(q + c, m, _mm512_cvtusepi32_epi8(v));
  }
}

// Each of a tile's n (<= 16) transformed rows (`rows` [n, Ci] f32, absolute maxima top[n]) as
// codes into point i's row of V (v + i vs), its scale (absmax / 127, 1 for an all-zero row) into
// scales[i].
SDC_AVX512_BF16 static inline void quantise_tile_points(const float* rows, int64_t Ci,
                                                        const __m512* top, int n, uint8_t* v,
                                                        size_t vs, float* scales) {
  const __m512 absmax = lane_maxima(top, n);
  const __mmask16 some = _mm512_cmp_ps_mask(absmax, _mm512_setzero_ps(), _CMP_GT_OQ);
  const __m512 c127 = _mm512_set1_ps(127.f);
  alignas(64) float inv[16];
  _mm512_store_ps(inv, _mm512_maskz_div_ps(some, c127, absmax));
  _mm512_mask_storeu_ps(scales, simd::tail_mask(n),
                        _mm512_mask_div_ps(_mm512_set1_ps(1.f), some, absmax, c127));
  for (int i = 0; i < n; ++i)
    quantise_point_row(rows + i * Ci, Ci, _mm512_set1_ps(inv[i]), v + i * vs);
}

// The int8 input transform of a chunk, for either Winograd: tiles [k0, k0 + count) of x [N, H, W,
// Ci] (bf16 bits or f32; zeros: Ci zeros, the padding), each tile's kPoints transformed rows in f32
// (`rows` [kPoints, Ci]) by transform(px, c, mask, rows, top) for the 16 channels at c (|value|
// maxima folded into top[kPoints]), then quantised point by point (quantise_tile_points) into V
// (point stride vs) with their scales in `scales` [tiles, kPoints]; tiles [count, tiles) get the
// codes of 0 and scale 0 (never read).
template <int kPoints, class T, class Transform>
SDC_AVX512_BF16 void quantise_chunk_points(const T* x, const T* zeros, int64_t H, int64_t W,
                                           int64_t Ci, int64_t k0, int64_t count, int64_t tiles,
                                           size_t vs, float* rows, uint8_t* V, float* scales,
                                           Transform transform) {
  for (int64_t t = 0; t < tiles; ++t) {
    if (t >= count) {
      for (int i = 0; i < kPoints; ++i) std::memset(V + i * vs + t * Ci, 128, size_t(Ci));
      std::fill_n(scales + kPoints * t, kPoints, 0.f);
      continue;
    }
    const T* px[16];
    winograd_tile_pixels(x, zeros, H, W, Ci, winograd_tile(k0 + t, H, W), px);
    __m512 top[kPoints];
    for (int i = 0; i < kPoints; ++i) top[i] = _mm512_setzero_ps();
    for (int64_t c = 0; c < Ci; c += 16) transform(px, c, simd::tail_mask(Ci - c), rows, top);
    quantise_tile_points(rows, Ci, top, kPoints, V + t * Ci, vs, scales + kPoints * t);
  }
}

// Calls fn(x, zeros) with x (and `zeros`, the padding's Ci f32 zeros) as the activations' element
// type: f32 where `f32`, else bf16 bits — the int8 input transforms read either.
template <class Fn>
inline void with_activations(const void* x, bool f32, const float* zeros, Fn fn) {
  if (f32)
    fn(static_cast<const float*>(x), zeros);
  else
    fn(static_cast<const uint16_t*>(x), reinterpret_cast<const uint16_t*>(zeros));
}

// An int8 product back in f32, 16 output channels from c: (acc - 128 x the kernel's sum) x the
// tile's scale x the kernel's; `point` indexes the kernels' [points, Co] arrays.
SDC_AVX512_BF16 static inline __attribute__((always_inline)) __m512 int8_point_value(
    const int32_t* acc, const WinogradInt8Kernels& k, int64_t point, float tile_scale, int64_t c,
    __mmask16 m) {
  const int64_t at = point * k.Co + c;
  const __m512i zp = _mm512_slli_epi32(_mm512_maskz_loadu_epi32(m, k.sums + at), 7);
  const __m512i a = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(m, acc + c), zp);
  const __m512 scale =
      _mm512_mul_ps(_mm512_set1_ps(tile_scale), _mm512_maskz_loadu_ps(m, k.scales + at));
  // A multiply with its rounding spelled out, which the compiler does not fuse with the output
  // transform's additions: the products round once here, wherever it inlines them, so the
  // images stay the same whether or not the points' loop keeps them in registers.
  return _mm512_mul_round_ps(_mm512_cvtepi32_ps(a), scale,
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

// A tile's products for the output transforms, 16 output channels at a time: the bf16 products'
// f32 M as it is ...
struct WinogradF32Points {
  const float* m;
  size_t ms;  // point stride
  WinogradF32Points at(int64_t t, int64_t Co) const { return {m + t * Co, ms}; }
  SDC_AVX512_BF16 __m512 operator()(int i, int64_t c, __mmask16 k) const {
    return _mm512_maskz_loadu_ps(k, m + i * ms + c);
  }
};
// ... or the int8 ones' s32 M scaled back (int8_point_value): `points` per tile (their scales'
// stride), point i of a tile using kernel `first` + i.
struct WinogradInt8Points {
  const int32_t* m;
  size_t ms;
  const float* tile_scales;  // [tiles, points]
  int64_t points;
  const WinogradInt8Kernels* kernels;
  int64_t first = 0;
  WinogradInt8Points at(int64_t t, int64_t Co) const {
    return {m + t * Co, ms, tile_scales + points * t, points, kernels, first};
  }
  SDC_AVX512_BF16 __m512 operator()(int i, int64_t c, __mmask16 k) const {
    return int8_point_value(m + i * ms, *kernels, first + i, tile_scales[i], c, k);
  }
};

}  // namespace sdc::cpu
