// The few-output-channel convolution's rows in AVX2 + FMA (narrow_conv_kernel.h with an 8-lane
// policy): f32 values 8 input channels per FMA, for CPUs without AVX-512 and channel counts that
// are no multiple of 16. Its 16 registers hold 4 pixels of 3 channels at a time (AVX-512: 8).
#include <immintrin.h>

#include "backend/cpu/narrow_conv_rows.h"
#include "backend/cpu/simd_avx2.h"

#define SDC_NARROW_TARGET SDC_AVX2
#include "backend/cpu/narrow_conv_kernel.h"

namespace sdc::cpu::narrow_avx2 {
namespace {

struct F32Lanes {
  using T = float;
  using Raw = __m256;
  using Acc = __m256;
  static constexpr int64_t kStep = 8;
  static constexpr int kRegs = 16;
  SDC_AVX2_INLINE Raw load(const float* p) { return _mm256_loadu_ps(p); }
  SDC_AVX2_INLINE void pin(Raw& v) { asm volatile("" : "+x"(v)); }
  SDC_AVX2_INLINE Acc zero() { return _mm256_setzero_ps(); }
  SDC_AVX2_INLINE Acc dot(Acc acc, Raw x, Raw w) { return _mm256_fmadd_ps(x, w, acc); }
  SDC_AVX2_INLINE float hsum(Acc a) { return simd256::hsum(a); }
};

}  // namespace

void rows(const float* x, const float* taps, const float* bias, int64_t H, int64_t W, int64_t Ci,
          int64_t Co, int64_t r0, int64_t r1, void* y, DType yt) {
  narrow_kernel::rows_for<F32Lanes>(x, taps, bias, H, W, Ci, Co, r0, r1, y, yt);
}

}  // namespace sdc::cpu::narrow_avx2
