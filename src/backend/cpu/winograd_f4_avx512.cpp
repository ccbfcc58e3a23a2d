// The F(4x4, 3x3) transforms in AVX-512, 16 channels at a time (winograd_f4_kernel.h with a
// 16-lane policy): half the instructions of the AVX2 ones, for channels in multiples of 16 where
// the own kernels run AVX-512 (on an Ice Lake, 128 channels at 512^2: the transforms were a third
// of the layer's time in AVX2).
#include "backend/cpu/simd.h"
#include "backend/cpu/winograd_f4_transforms.h"

#define SDC_WINO4_TARGET SDC_AVX512
#include "backend/cpu/winograd_f4_kernel.h"

namespace sdc::cpu::wino4_avx512 {
namespace {

struct Avx512Lanes {
  using V = __m512;
  static constexpr int kLanes = 16;
  SDC_AVX512_INLINE V zero() { return _mm512_setzero_ps(); }
  SDC_AVX512_INLINE V load(const float* p) { return _mm512_loadu_ps(p); }
  SDC_AVX512_INLINE void store(float* p, V x) { _mm512_storeu_ps(p, x); }
  SDC_AVX512_INLINE V set1(float x) { return _mm512_set1_ps(x); }
  SDC_AVX512_INLINE V add(V a, V b) { return _mm512_add_ps(a, b); }
  SDC_AVX512_INLINE V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  SDC_AVX512_INLINE V max(V a, V b) { return _mm512_max_ps(a, b); }
  SDC_AVX512_INLINE V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
};

}  // namespace

void input_chunk(const float* x, const float* zeros, const WinogradF4Conv::Shape& s, int64_t k0,
                 int64_t count, int64_t tiles, float* V) {
  wino4_kernel::input_chunk<Avx512Lanes>(x, zeros, s, k0, count, tiles, V);
}

void output_chunk(const float* M, size_t ms, const WinogradF4Conv::Shape& s, int64_t k0,
                  int64_t count, const float* bias, const float* add, float* y, bool relu) {
  wino4_kernel::output_chunk_any<Avx512Lanes>(M, ms, s, k0, count, bias, add, y, relu);
}

}  // namespace sdc::cpu::wino4_avx512
