// kInt8GemmAvxVnni: int8_gemm (int8_gemm_kernel.h) on 8-lane vectors with AVX-VNNI, the
// VEX-encoded 256-bit vpdpbusd of CPUs with AVX2 and no AVX-512. A tile is 6 rows x 16 channels:
// 16 vector registers hold its 12 accumulators, 2 weight vectors and a broadcast; a block of 64
// channels is 4 such column strips (a GEGLU tile: 8 value and 8 gate channels).
#include "backend/cpu/int8_gemm_kernels.h"
#include "backend/cpu/simd.h"
#include "backend/cpu/simd_avx2.h"

#include "backend/cpu/vnni.h"

#define SDC_GEMM_TARGET SDC_AVXVNNI
#include "backend/cpu/int8_gemm_kernel.h"

namespace sdc::cpu {
namespace {

struct AvxVnni : vnni::Lanes256 {
  static constexpr int kVecs = 2, kRows = 6;

  template <int N>
  SDC_AVXVNNI_INLINE void gelu_fast(VF (&x)[N]) {
    simd256::gelu_fast(x);
  }
  SDC_AVXVNNI_INLINE VF load_act(const uint16_t* p) { return simd256::load(p, 8); }
  SDC_AVXVNNI_INLINE VF load_act(const float* p) { return _mm256_loadu_ps(p); }
  SDC_AVXVNNI_INLINE void store_act(uint16_t* p, VF v) { simd256::store(p, v); }
  SDC_AVXVNNI_INLINE void store_act(float* p, VF v) { _mm256_storeu_ps(p, v); }

  template <class T>
  SDC_AVXVNNI static void quantise_row(const T* x, int64_t K, uint8_t* q, float& scale,
                                       float& zero) {
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();  // the range holds 0
    for (int64_t k = 0; k < K; k += 8) {
      const __m256 v = simd256::load(x + k, K - k);  // lanes past K read as 0
      lo = _mm256_min_ps(lo, v);
      hi = _mm256_max_ps(hi, v);
    }
    const float l = -simd256::hmax(_mm256_sub_ps(_mm256_setzero_ps(), lo)), h = simd256::hmax(hi);
    scale = h > l ? (h - l) / 255.f : 1.f;
    zero = std::clamp(std::nearbyint(-l / scale), 0.f, 255.f);
    const __m256 inv = _mm256_set1_ps(1.f / scale), zp = _mm256_set1_ps(zero);
    const __m256 floor = _mm256_setzero_ps(), ceil = _mm256_set1_ps(255.f);
    for (int64_t k = 0; k < K; k += 8) {
      // round(x / scale) + zero, clamped: rounding to nearest even like std::nearbyint.
      const __m256 r = _mm256_round_ps(_mm256_mul_ps(simd256::load(x + k, K - k), inv),
                                       _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      const __m256i c =
          _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_add_ps(r, zp), floor), ceil));
      simd256::store_bytes(q + k, simd256::pack_u8(c), K - k);
    }
  }
};

}  // namespace

const Int8GemmKernels kInt8GemmAvxVnni{"avx_vnni", &int8_gemm_kernel::quantise_rows<AvxVnni>,
                                       &int8_gemm_kernel::quantise_row_f32<AvxVnni>,
                                       &int8_gemm_kernel::gemm<AvxVnni>,
                                       &int8_gemm_kernel::gemm_geglu<AvxVnni>};

}  // namespace sdc::cpu
