// The W8A8 linear layers' own product on AVX512-VNNI or AVX-VNNI (int8_gemm_kernels.h):
// activations quantised per row (token) to u8 with a scale and zero point of their own, times the
// s8 weights with a scale per output channel, rescaled, biased and added to a residual in one
// pass over each output tile.
//
// Why not oneDNN's int8 matmul: oneDNN 2.6 takes the per-channel rescale only as a binary post-op
// ({1, N}; runtime output scales fall back to its reference code), which cost its brgemm kernel
// 15-20 % at K = 320 (1667 against 1931 GFLOP/s here, the same tile with the epilogue below, on
// a 2-core Zen 5), and a per-row scale only as a second binary post-op on a 3-D product (another
// 20 %). Per-row codes are also finer than one scale for the whole tensor (a token far from the
// others no longer coarsens every row's codes), and quantising a row takes one read of it
// instead of a min/max pass and a rounding pass over the tensor.
//
// The weights are the ones pack_int8_weight makes for oneDNN's int8 matmul, whose layout for
// these shapes is BA16a64b4a: per block of 64 output channels, K / 4 groups of [64][4] s8 values
// (4 consecutive input channels of one output channel in a dword, what vpdpbusd multiplies), K
// padded with zeros to a multiple of 64.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/dtype.h"

namespace sdc::cpu {

// M rows of K activations quantised row by row: the u8 codes q[M K], and each row's scale and
// zero point (an integer, as float).
struct RowCodes {
  uint8_t* q = nullptr;
  float* scale = nullptr;  // [M]
  float* zero = nullptr;   // [M]
};
// The bytes and the layout of M x K row codes in one buffer (a plan's store or scratch): the
// codes, then from the next arena alignment the M scales, then the M zero points.
size_t row_codes_bytes(int64_t M, int64_t K);
RowCodes row_codes_in(void* buffer, int64_t M, int64_t K);

// Row m of x (M x K, f32 or bf16) as u8 codes q[m K ..]: scale[m] = (max(hi, 0) - min(lo, 0)) / 255
// (1 for a row of zeros), zero[m] = round(-min(lo, 0) / scale[m]) (an integer in [0, 255], as
// float) and q = clamp(round(x / scale[m]) + zero[m], 0, 255); the row's range holds 0, so 0 is
// exact. Parallel over rows; AVX-512 (callers check int8_gemm_fits).
void quantise_rows(const void* x, DType type, int64_t M, int64_t K, const RowCodes& codes);

// One row of K f32 values by quantise_rows' rule, for producers that have the row at hand (the
// norms that write their consumers' codes, layer_norm_row_codes): the build that runs here, taken
// once per call of theirs rather than looked up per row.
using RowQuantiser = void (*)(const float* x, int64_t K, uint8_t* q, float& scale, float& zero);
RowQuantiser row_quantiser();

struct Int8GemmWeights {
  const int8_t* values = nullptr;  // BA16a64b4a: [N / 64][K' / 4][64][4], K' = K up to 64s
  const float* scales = nullptr;   // [N]: weight = value * scale
  const int32_t* sums = nullptr;   // [N]: the sum of output channel o's K values
  const float* bias = nullptr;     // [N] or none
  int64_t K = 0, N = 0;
};

enum class GemmResidual {
  None,  // y = product
  Sum,   // y += product (y holds the residual)
  Add,   // y = product + addend
};

struct Int8GemmOutput {
  void* y = nullptr;  // M x N, f32 or bf16
  DType type = DType::F32;
  GemmResidual residual = GemmResidual::None;
  const void* addend = nullptr;  // M x N, f32 or bf16 (Add)
  DType addend_type = DType::F32;
};

// Whether int8_gemm runs this product here: AVX512-VNNI where the own kernels run AVX-512,
// AVX-VNNI where they run AVX2 (under DNNL_MAX_CPU_ISA and force_kernel_isa as oneDNN and the
// other own kernels), K a multiple of 16 and N of 64.
bool int8_gemm_fits(int64_t K, int64_t N);
// The build that runs here ("avx512_vnni", "avx_vnni"; "" where none does).
const char* int8_gemm_isa();

// out = (q - zero) scale x (values scales)^T + bias [+ residual], rounded once to out's type:
// y[m, o] = scale[m] scales[o] (acc - zero[m] sums[o]) + bias[o], acc = sum_k q[m, k] value[o, k]
// exact in s32. Parallel over rows (over channel blocks when there are few rows).
void int8_gemm(const RowCodes& codes, int64_t M, const Int8GemmWeights& w,
               const Int8GemmOutput& out);

// GEGLU: out = (value product) x GELU(gate product) (exact-erf GELU, simd::gelu_fast), each as
// int8_gemm's product, value and gate with the same K and N. No residual.
void int8_gemm_geglu(const RowCodes& codes, int64_t M, const Int8GemmWeights& value,
                     const Int8GemmWeights& gate, const Int8GemmOutput& out);

}  // namespace sdc::cpu
