// The few-output-channel convolution's rows in AVX-512 (narrow_conv_kernel.h with 16-lane
// policies): f32 values 16 input channels per FMA, bf16 values 32 per VDPBF16PS.
//
// Both policies' code is built for AVX-512 BF16; its one BF16 instruction is the bf16 policy's
// VDPBF16PS, so the f32 rows run on any AVX-512 CPU (narrow_conv_pays).
#include <immintrin.h>

#include "backend/cpu/narrow_conv_rows.h"
#include "backend/cpu/simd.h"

#define SDC_NARROW_TARGET \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c,avx512bf16")))
#define SDC_NARROW_INLINE SDC_NARROW_TARGET static inline __attribute__((always_inline))
#include "backend/cpu/narrow_conv_kernel.h"

namespace sdc::cpu::narrow_avx512 {
namespace {

struct F32Lanes {
  using T = float;
  using Raw = __m512;
  using Acc = __m512;
  static constexpr int64_t kStep = 16;
  static constexpr int kRegs = 32;
  SDC_NARROW_INLINE Raw load(const float* p) { return _mm512_loadu_ps(p); }
  SDC_NARROW_INLINE void pin(Raw& v) { asm volatile("" : "+v"(v)); }
  SDC_NARROW_INLINE Acc zero() { return _mm512_setzero_ps(); }
  SDC_NARROW_INLINE Acc dot(Acc acc, Raw x, Raw w) { return _mm512_fmadd_ps(x, w, acc); }
  SDC_NARROW_INLINE float hsum(Acc a) { return simd::hsum(a); }
};

struct Bf16Lanes {
  using T = uint16_t;
  using Raw = __m512i;
  using Acc = __m512;
  static constexpr int64_t kStep = 32;
  static constexpr int kRegs = 32;
  SDC_NARROW_INLINE Raw load(const uint16_t* p) { return _mm512_loadu_si512(p); }
  SDC_NARROW_INLINE void pin(Raw& v) { asm volatile("" : "+v"(v)); }
  SDC_NARROW_INLINE Acc zero() { return _mm512_setzero_ps(); }
  SDC_NARROW_INLINE Acc dot(Acc acc, Raw x, Raw w) {
    return _mm512_dpbf16_ps(acc, (__m512bh)x, (__m512bh)w);
  }
  SDC_NARROW_INLINE float hsum(Acc a) { return simd::hsum(a); }
};

}  // namespace

void rows(const float* x, const float* taps, const float* bias, int64_t H, int64_t W, int64_t Ci,
          int64_t Co, int64_t r0, int64_t r1, void* y, DType yt) {
  narrow_kernel::rows_for<F32Lanes>(x, taps, bias, H, W, Ci, Co, r0, r1, y, yt);
}

void rows(const uint16_t* x, const uint16_t* taps, const float* bias, int64_t H, int64_t W,
          int64_t Ci, int64_t Co, int64_t r0, int64_t r1, void* y, DType yt) {
  narrow_kernel::rows_for<Bf16Lanes>(x, taps, bias, H, W, Ci, Co, r0, r1, y, yt);
}

}  // namespace sdc::cpu::narrow_avx512
