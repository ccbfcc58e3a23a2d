// The f32 Winograd transforms in AVX2 + FMA, 8 channels at a time: every CPU with AVX2, and
// channel counts that are no multiple of 16 (winograd_f32_kernel.h and winograd_f4_kernel.h with
// the 8-lane policy).
#include "backend/cpu/simd.h"
#include "backend/cpu/simd_avx2.h"

#define SDC_WINO_F32_TARGET SDC_AVX2
#define SDC_WINO_F32_LANES wino_lanes::Avx2
#define SDC_WINO_F32_NAMESPACE wino_f32_avx2
#include "backend/cpu/winograd_f32_entry.h"
