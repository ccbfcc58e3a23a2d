// int8_gemm.h's functions as each ISA builds them (int8_gemm_kernel.h): 16 lanes on AVX512-VNNI
// (int8_gemm_avx512.cpp), 8 lanes on AVX-VNNI (int8_gemm_avxvnni.cpp). int8_gemm.cpp picks one
// per call, as the own kernels' ISA (kernel_isa) says.
#pragma once

#include <cstdint>

#include "backend/cpu/int8_gemm.h"

namespace sdc::cpu {

struct Int8GemmKernels {
  const char* isa;  // "avx512_vnni" or "avx_vnni"
  void (*quantise_rows)(const void* x, DType type, int64_t M, int64_t K, const RowCodes& codes);
  RowQuantiser quantise_row;
  void (*gemm)(const RowCodes& codes, int64_t M, const Int8GemmWeights& w,
               const Int8GemmOutput& out);
  void (*geglu)(const RowCodes& codes, int64_t M, const Int8GemmWeights& value,
                const Int8GemmWeights& gate, const Int8GemmOutput& out);
};

// Each needs its CPU feature (AVX512-VNNI, AVX-VNNI); int8_gemm_fits checks.
extern const Int8GemmKernels kInt8GemmAvx512Vnni;
extern const Int8GemmKernels kInt8GemmAvxVnni;

}  // namespace sdc::cpu
