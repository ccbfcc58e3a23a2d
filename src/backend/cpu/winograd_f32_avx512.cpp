// The f32 Winograd transforms in AVX-512, 16 channels at a time, for channels in multiples of 16
// where the own kernels run AVX-512 (winograd_f32_kernel.h and winograd_f4_kernel.h with the
// 16-lane policy): half the AVX2 ones' instructions. On an Ice Lake (2 threads) the F(4x4, 3x3)
// layers took 0.7 of their AVX2 time at 128 channels and 512^2, 0.85 at 256 and 256^2.
#include "backend/cpu/winograd_f32_lanes.h"
#include "backend/cpu/winograd_f32_transforms.h"

#define SDC_WINO_F32_TARGET SDC_AVX512
#include "backend/cpu/winograd_f32_kernel.h"
#include "backend/cpu/winograd_f4_kernel.h"

namespace sdc::cpu::wino_f32_avx512 {

using L = wino_lanes::Avx512;

void input_chunk(const float* x, const float* zeros, int64_t H, int64_t W, int64_t Ci, int64_t k0,
                 int64_t count, int64_t tiles, int64_t v_tiles, float* V) {
  wino_f32_kernel::input_chunk<L>(x, zeros, H, W, Ci, k0, count, tiles, v_tiles, V);
}

void output_chunk(const float* M, size_t ms, int64_t H, int64_t W, int64_t Co, int64_t k0,
                  int64_t count, const float* bias, const float* add, float* y, bool relu) {
  wino_f32_kernel::output_chunk<L>(M, ms, H, W, Co, k0, count, bias, add, y, relu);
}

void upsample_input_chunk(const float* x, const float* zeros, int64_t H, int64_t W, int64_t Ci,
                          int p, int64_t k0, int64_t count, int64_t tiles, float* V) {
  wino_f32_kernel::upsample_input_chunk<L>(x, zeros, H, W, Ci, p, k0, count, tiles, V);
}

void upsample_output_chunk(const float* M, size_t ms, int64_t H, int64_t W, int64_t Co, int p,
                           int64_t k0, int64_t count, const float* bias, float* y) {
  wino_f32_kernel::upsample_output_chunk<L>(M, ms, H, W, Co, p, k0, count, bias, y);
}

void f4_input_chunk(const float* x, const float* zeros, const WinogradF4Conv::Shape& s, int64_t k0,
                    int64_t count, int64_t tiles, float* V) {
  wino4_kernel::input_chunk<L>(x, zeros, s, k0, count, tiles, V);
}

void f4_output_chunk(const float* M, size_t ms, const WinogradF4Conv::Shape& s, int64_t k0,
                     int64_t count, const float* bias, const float* add, float* y, bool relu) {
  wino4_kernel::output_chunk_any<L>(M, ms, s, k0, count, bias, add, y, relu);
}

}  // namespace sdc::cpu::wino_f32_avx512
