// kInt8GemmAvx512Vnni: int8_gemm (int8_gemm_kernel.h) on 16-lane AVX512-VNNI vectors. A tile is
// 6 rows x 64 channels (the whole block): 24 accumulators, 4 weight vectors, 1 broadcast.
#include "backend/cpu/int8_gemm_kernels.h"
#include "backend/cpu/simd.h"

#include "backend/cpu/vnni.h"

#define SDC_GEMM_TARGET SDC_VNNI
#include "backend/cpu/int8_gemm_kernel.h"

namespace sdc::cpu {
namespace {

struct Avx512Vnni : vnni::Lanes512 {
  static constexpr int kVecs = 4, kRows = 6;

  template <int N>
  SDC_VNNI_INLINE void gelu_fast(VF (&x)[N]) {
    simd::gelu_fast(x);
  }
  SDC_VNNI_INLINE VF load_act(const uint16_t* p) { return simd::load(p, __mmask16(0xffff)); }
  SDC_VNNI_INLINE VF load_act(const float* p) { return _mm512_loadu_ps(p); }
  SDC_VNNI_INLINE void store_act(uint16_t* p, VF v) { simd::store(p, v, __mmask16(0xffff)); }
  SDC_VNNI_INLINE void store_act(float* p, VF v) { _mm512_storeu_ps(p, v); }

  template <class T>
  SDC_VNNI static void quantise_row(const T* x, int64_t K, uint8_t* q, float& scale, float& zero) {
    __m512 lo = _mm512_setzero_ps(), hi = _mm512_setzero_ps();  // the range holds 0
    for (int64_t k = 0; k < K; k += 16) {
      const __m512 v = simd::load(x + k, simd::tail_mask(K - k));  // masked lanes read as 0
      lo = _mm512_min_ps(lo, v);
      hi = _mm512_max_ps(hi, v);
    }
    const float l = _mm512_reduce_min_ps(lo), h = _mm512_reduce_max_ps(hi);
    scale = h > l ? (h - l) / 255.f : 1.f;
    zero = std::clamp(std::nearbyint(-l / scale), 0.f, 255.f);
    const __m512 inv = _mm512_set1_ps(1.f / scale), zp = _mm512_set1_ps(zero);
    const __m512 floor = _mm512_setzero_ps(), ceil = _mm512_set1_ps(255.f);
    for (int64_t k = 0; k < K; k += 16) {
      const __mmask16 m = simd::tail_mask(K - k);
      // round(x / scale) + zero, clamped: roundscale rounds to nearest even like std::nearbyint.
      const __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(simd::load(x + k, m), inv),
                                            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      const __m512 c = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(r, zp), floor), ceil);
      _mm_mask_storeu_epi8(q + k, m, _mm512_cvtusepi32_epi8(_mm512_cvtps_epu32(c)));
    }
  }
};

}  // namespace

const Int8GemmKernels kInt8GemmAvx512Vnni{
    "avx512_vnni", &int8_gemm_kernel::quantise_rows<Avx512Vnni>,
    &int8_gemm_kernel::quantise_row_f32<Avx512Vnni>, &int8_gemm_kernel::gemm<Avx512Vnni>,
    &int8_gemm_kernel::gemm_geglu<Avx512Vnni>};

}  // namespace sdc::cpu
