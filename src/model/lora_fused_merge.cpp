// Tiled up @ down accumulated into W. Register tiles of 4 rows × 64 columns (AVX-512) keep a
// 64-column slab of `down` in L1 while every row of `up` passes over it. No FMA: a fused
// multiply-add rounds once where lora_delta's loop rounds twice: the SIMD code uses the explicit
// rounding intrinsics (which compilers never contract) and the portable loop forbids contraction.
#include "model/lora_fused_merge.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <immintrin.h>

#include <algorithm>

#include "common/error.h"

namespace sdc::model {
namespace {

struct Problem {
  const float* up;    // [M, R]
  const float* down;  // [R, N]
  float* w;           // [M, N]
  int64_t m, r, n;
  float k;  // alpha/rank
  bool use_k;
  float scale;
};

// Portable version: one row at a time, columns in blocks kept in a local accumulator.
void merge_generic(const Problem& p) {
  constexpr int64_t kBlock = 256;
  float acc[kBlock];
  for (int64_t i = 0; i < p.m; ++i) {
    const float* a = p.up + i * p.r;
    for (int64_t j0 = 0; j0 < p.n; j0 += kBlock) {
      const int64_t nb = std::min(kBlock, p.n - j0);
      std::fill(acc, acc + nb, 0.0f);
      for (int64_t r = 0; r < p.r; ++r) {
        const float ar = a[r];
        const float* b = p.down + r * p.n + j0;
        for (int64_t j = 0; j < nb; ++j) acc[j] += ar * b[j];
      }
      float* w = p.w + i * p.n + j0;
      for (int64_t j = 0; j < nb; ++j) {
        float d = acc[j];
        if (p.use_k) d *= p.k;
        w[j] += p.scale * d;
      }
    }
  }
}

constexpr int kRound = _MM_FROUND_CUR_DIRECTION;

// a·b and a+b, each rounded on its own (the masked forms: GCC 12 warns about the others'
// undefined pass-through operand).
__attribute__((target("avx512f"))) inline __m512 mul(__m512 a, __m512 b) {
  return _mm512_maskz_mul_round_ps(0xffff, a, b, kRound);
}
__attribute__((target("avx512f"))) inline __m512 add(__m512 a, __m512 b) {
  return _mm512_maskz_add_round_ps(0xffff, a, b, kRound);
}

// ROWS × COLS vectors of 16 floats at (i, j); `mask` limits the last vector of a 1-vector tile.
template <int ROWS, int COLS>
__attribute__((target("avx512f"))) inline void tile512(const Problem& p, int64_t i, int64_t j,
                                                       __mmask16 mask) {
  __m512 acc[ROWS][COLS];
  for (int a = 0; a < ROWS; ++a)
    for (int c = 0; c < COLS; ++c) acc[a][c] = _mm512_setzero_ps();
  for (int64_t r = 0; r < p.r; ++r) {
    const float* brow = p.down + r * p.n + j;
    __m512 b[COLS];
    for (int c = 0; c < COLS; ++c) b[c] = _mm512_maskz_loadu_ps(mask, brow + 16 * c);
    for (int a = 0; a < ROWS; ++a) {
      const __m512 av = _mm512_set1_ps(p.up[(i + a) * p.r + r]);
      for (int c = 0; c < COLS; ++c) acc[a][c] = add(acc[a][c], mul(av, b[c]));
    }
  }
  const __m512 vk = _mm512_set1_ps(p.k), vs = _mm512_set1_ps(p.scale);
  for (int a = 0; a < ROWS; ++a)
    for (int c = 0; c < COLS; ++c) {
      __m512 d = acc[a][c];
      if (p.use_k) d = mul(d, vk);
      float* w = p.w + (i + a) * p.n + j + 16 * c;
      const __m512 wv = _mm512_maskz_loadu_ps(mask, w);
      _mm512_mask_storeu_ps(w, mask, add(wv, mul(vs, d)));
    }
}

template <int COLS>
__attribute__((target("avx512f"))) void rows512(const Problem& p, int64_t j, __mmask16 mask) {
  int64_t i = 0;
  for (; i + 4 <= p.m; i += 4) tile512<4, COLS>(p, i, j, mask);
  for (; i < p.m; ++i) tile512<1, COLS>(p, i, j, mask);
}

__attribute__((target("avx512f"))) void merge_avx512(const Problem& p) {
  int64_t j = 0;
  for (; j + 64 <= p.n; j += 64) rows512<4>(p, j, 0xffff);
  for (; j + 16 <= p.n; j += 16) rows512<1>(p, j, 0xffff);
  if (j < p.n) rows512<1>(p, j, __mmask16((1u << (p.n - j)) - 1));
}

bool has_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
}

}  // namespace

bool fused_merge_applies(const LoraModule& m) {
  return m.kind == LoraKind::LoRA && !m.has("lora_mid") && m.dora == DoraAxis::None &&
         m.has("lora_up") && m.has("lora_down");
}

bool fused_lora_merge(std::vector<float>& w, const LoraModule& m, float scale, bool allow_simd) {
  if (!fused_merge_applies(m)) return false;
  const TensorRef& up = *m.part("lora_up");
  const TensorRef& down = *m.part("lora_down");
  const int64_t rows = up.shape.empty() ? 1 : up.shape[0];
  const int64_t rank = rows ? up.numel() / rows : 0;
  const int64_t cols = down.shape.empty() ? 1 : down.numel() / down.shape[0];
  if (down.shape.empty() || down.shape[0] != rank || int64_t(w.size()) != rows * cols)
    throw Error(m.first_key(), "fused merge", "up [Co, R] and down [R, K] fitting the weight",
                shape_str(up.shape) + " and " + shape_str(down.shape));
  const std::vector<float> a = up.to_f32(), b = down.to_f32();
  const float k = m.alpha_scale();
  const Problem p{a.data(), b.data(), w.data(), rows, rank, cols, k, k != 1.0f, scale};
  if (allow_simd && has_avx512())
    merge_avx512(p);
  else
    merge_generic(p);
  return true;
}

}  // namespace sdc::model
