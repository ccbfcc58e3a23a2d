// The f32 Winograd transforms in AVX-512, 16 channels at a time, for channels in multiples of 16
// where the own kernels run AVX-512 (winograd_f32_kernel.h and winograd_f4_kernel.h with the
// 16-lane policy): half the AVX2 ones' instructions. On an Ice Lake (2 threads) the F(4x4, 3x3)
// layers took 0.7 of their AVX2 time at 128 channels and 512^2, 0.85 at 256 and 256^2.
#include "backend/cpu/simd.h"
#include "backend/cpu/simd_avx2.h"

#define SDC_WINO_F32_TARGET SDC_AVX512
#define SDC_WINO_F32_LANES wino_lanes::Avx512
#define SDC_WINO_F32_NAMESPACE wino_f32_avx512
#include "backend/cpu/winograd_f32_entry.h"
