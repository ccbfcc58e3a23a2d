// The F(4x4, 3x3) transforms in AVX2 + FMA, 8 channels at a time (winograd_f4_kernel.h with an
// 8-lane policy): every CPU with AVX2, and channel counts that are no multiple of 16.
#include "backend/cpu/simd_avx2.h"
#include "backend/cpu/winograd_f4_transforms.h"

#define SDC_WINO4_TARGET SDC_AVX2
#include "backend/cpu/winograd_f4_kernel.h"

namespace sdc::cpu::wino4_avx2 {
namespace {

struct Avx2Lanes {
  using V = __m256;
  static constexpr int kLanes = 8;
  SDC_AVX2_INLINE V zero() { return _mm256_setzero_ps(); }
  SDC_AVX2_INLINE V load(const float* p) { return _mm256_loadu_ps(p); }
  SDC_AVX2_INLINE void store(float* p, V x) { _mm256_storeu_ps(p, x); }
  SDC_AVX2_INLINE V set1(float x) { return _mm256_set1_ps(x); }
  SDC_AVX2_INLINE V add(V a, V b) { return _mm256_add_ps(a, b); }
  SDC_AVX2_INLINE V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  SDC_AVX2_INLINE V max(V a, V b) { return _mm256_max_ps(a, b); }
  SDC_AVX2_INLINE V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
};

}  // namespace

void input_chunk(const float* x, const float* zeros, const WinogradF4Conv::Shape& s, int64_t k0,
                 int64_t count, int64_t tiles, float* V) {
  wino4_kernel::input_chunk<Avx2Lanes>(x, zeros, s, k0, count, tiles, V);
}

void output_chunk(const float* M, size_t ms, const WinogradF4Conv::Shape& s, int64_t k0,
                  int64_t count, const float* bias, const float* add, float* y, bool relu) {
  wino4_kernel::output_chunk_any<Avx2Lanes>(M, ms, s, k0, count, bias, add, y, relu);
}

}  // namespace sdc::cpu::wino4_avx2
