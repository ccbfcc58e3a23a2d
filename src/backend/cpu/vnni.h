// The VNNI dot product (acc += u8 a x s8 b, four products a lane) of the own int8 kernels, and
// their target attributes: 16 lanes on AVX512-VNNI, 8 lanes on AVX-VNNI (the VEX-encoded form of
// CPUs with AVX2 and no AVX-512, Intel from Alder Lake on). Callers are functions with the same
// target, reached only where the CPU has it (int8_gemm.cpp and attention_int8.cpp check).
//
// Through asm: with the _mm512_dpbusd_epi32 builtin GCC 12 copies each accumulator to the stack
// around every instruction of an unrolled register tile (2-3x slower).
#pragma once

#include <immintrin.h>

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

}  // namespace sdc::cpu::vnni
