// The VNNI dot product (acc += u8 a x s8 b, four products a lane) of the own int8 kernels, their
// target attributes, and the vector operations their lanes policies share (Lanes512, Lanes256):
// 16 lanes on AVX512-VNNI, 8 lanes on AVX-VNNI (the VEX-encoded form of CPUs with AVX2 and no
// AVX-512, Intel from Alder Lake on). Callers are functions with the same target, reached only
// where the CPU has it (int8_gemm.cpp and attention_int8.cpp check).
//
// Through asm: with the _mm512_dpbusd_epi32 builtin GCC 12 copies each accumulator to the stack
// around every instruction of an unrolled register tile (2-3x slower).
#pragma once

#include <immintrin.h>

#include <cstdint>

#define SDC_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")))
#define SDC_VNNI_INLINE SDC_VNNI static inline __attribute__((always_inline))
#define SDC_AVXVNNI __attribute__((target("avx2,fma,f16c,avxvnni")))
#define SDC_AVXVNNI_INLINE SDC_AVXVNNI static inline __attribute__((always_inline))

namespace sdc::cpu::vnni {

SDC_VNNI_INLINE __m512i dpbusd(__m512i acc, __m512i a, __m512i b) {
  asm("vpdpbusd %[b], %[a], %[acc]" : [acc] "+v"(acc) : [a] "v"(a), [b] "v"(b));
  return acc;
}

// {vex} (written %{vex%} in a GCC asm template): the assembler would otherwise pick the EVEX form
// (AVX512-VNNI + VL), which the CPUs this form is for do not have.
SDC_AVXVNNI_INLINE __m256i dpbusd(__m256i acc, __m256i a, __m256i b) {
  asm("%{vex%} vpdpbusd %[b], %[a], %[acc]" : [acc] "+x"(acc) : [a] "x"(a), [b] "x"(b));
  return acc;
}

// What int8_gemm_kernel.h's and attention_int8_kernel.h's lanes policies both need, one struct
// per width; each policy derives from its width's and adds its own. VI holds s32 (or packed
// bytes), VF f32.
struct Lanes512 {
  using VI = __m512i;
  using VF = __m512;
  static constexpr int kLanes = 16;

  SDC_VNNI_INLINE VI izero() { return _mm512_setzero_si512(); }
  SDC_VNNI_INLINE VI iset1(int32_t x) { return _mm512_set1_epi32(x); }
  SDC_VNNI_INLINE VI iload(const void* p) { return _mm512_loadu_si512(p); }
  SDC_VNNI_INLINE void istore(void* p, VI x) { _mm512_storeu_si512(p, x); }
  SDC_VNNI_INLINE VI iadd(VI a, VI b) { return _mm512_add_epi32(a, b); }
  SDC_VNNI_INLINE VI dpbusd(VI acc, VI a, VI b) { return vnni::dpbusd(acc, a, b); }
  SDC_VNNI_INLINE VF cvt(VI x) { return _mm512_cvtepi32_ps(x); }    // s32 -> f32
  SDC_VNNI_INLINE VI round(VF x) { return _mm512_cvtps_epi32(x); }  // to nearest even
  SDC_VNNI_INLINE VF fzero() { return _mm512_setzero_ps(); }
  SDC_VNNI_INLINE VF fload(const float* p) { return _mm512_loadu_ps(p); }
  SDC_VNNI_INLINE void fstore(float* p, VF x) { _mm512_storeu_ps(p, x); }
  SDC_VNNI_INLINE VF fset1(float x) { return _mm512_set1_ps(x); }
  SDC_VNNI_INLINE VF add(VF a, VF b) { return _mm512_add_ps(a, b); }
  SDC_VNNI_INLINE VF sub(VF a, VF b) { return _mm512_sub_ps(a, b); }
  SDC_VNNI_INLINE VF mul(VF a, VF b) { return _mm512_mul_ps(a, b); }
  SDC_VNNI_INLINE VF max(VF a, VF b) { return _mm512_max_ps(a, b); }
  SDC_VNNI_INLINE VF fma(VF a, VF b, VF c) { return _mm512_fmadd_ps(a, b, c); }    // a b + c
  SDC_VNNI_INLINE VF fnma(VF a, VF b, VF c) { return _mm512_fnmadd_ps(a, b, c); }  // c - a b
};

struct Lanes256 {
  using VI = __m256i;
  using VF = __m256;
  static constexpr int kLanes = 8;

  SDC_AVXVNNI_INLINE VI izero() { return _mm256_setzero_si256(); }
  SDC_AVXVNNI_INLINE VI iset1(int32_t x) { return _mm256_set1_epi32(x); }
  SDC_AVXVNNI_INLINE VI iload(const void* p) {
    return _mm256_loadu_si256(static_cast<const __m256i*>(p));
  }
  SDC_AVXVNNI_INLINE void istore(void* p, VI x) {
    _mm256_storeu_si256(static_cast<__m256i*>(p), x);
  }
  SDC_AVXVNNI_INLINE VI iadd(VI a, VI b) { return _mm256_add_epi32(a, b); }
  SDC_AVXVNNI_INLINE VI dpbusd(VI acc, VI a, VI b) { return vnni::dpbusd(acc, a, b); }
  SDC_AVXVNNI_INLINE VF cvt(VI x) { return _mm256_cvtepi32_ps(x); }
  SDC_AVXVNNI_INLINE VI round(VF x) { return _mm256_cvtps_epi32(x); }
  SDC_AVXVNNI_INLINE VF fzero() { return _mm256_setzero_ps(); }
  SDC_AVXVNNI_INLINE VF fload(const float* p) { return _mm256_loadu_ps(p); }
  SDC_AVXVNNI_INLINE void fstore(float* p, VF x) { _mm256_storeu_ps(p, x); }
  SDC_AVXVNNI_INLINE VF fset1(float x) { return _mm256_set1_ps(x); }
  SDC_AVXVNNI_INLINE VF add(VF a, VF b) { return _mm256_add_ps(a, b); }
  SDC_AVXVNNI_INLINE VF sub(VF a, VF b) { return _mm256_sub_ps(a, b); }
  SDC_AVXVNNI_INLINE VF mul(VF a, VF b) { return _mm256_mul_ps(a, b); }
  SDC_AVXVNNI_INLINE VF max(VF a, VF b) { return _mm256_max_ps(a, b); }
  SDC_AVXVNNI_INLINE VF fma(VF a, VF b, VF c) { return _mm256_fmadd_ps(a, b, c); }
  SDC_AVXVNNI_INLINE VF fnma(VF a, VF b, VF c) { return _mm256_fnmadd_ps(a, b, c); }
};

}  // namespace sdc::cpu::vnni
