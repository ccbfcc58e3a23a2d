// The f32 plans' F(2x2, 3x3) and upsampling transforms (winograd_f32.h): each call takes the
// AVX-512 build (winograd_f32_avx512.cpp) where the own kernels run AVX-512 and the channels come
// in multiples of 16, else the AVX2 one (winograd_f32_avx2.cpp).
#include "backend/cpu/winograd_f32.h"

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/winograd_f32_transforms.h"

namespace sdc::cpu::winograd_f32 {

bool available() {
  return kernel_isa() != KernelIsa::Scalar;
}

bool wide(int64_t channels) {
  return channels % 16 == 0 && use_avx512_kernels();
}

void input_chunk(const float* x, const float* zeros, int64_t H, int64_t W, int64_t Ci, int64_t k0,
                 int64_t count, int64_t tiles, int64_t v_tiles, float* V) {
  (wide(Ci) ? wino_f32_avx512::input_chunk : wino_f32_avx2::input_chunk)(x, zeros, H, W, Ci, k0,
                                                                         count, tiles, v_tiles, V);
}

void output_chunk(const float* M, size_t ms, int64_t H, int64_t W, int64_t Co, int64_t k0,
                  int64_t count, const float* bias, const float* add, float* y, bool relu) {
  (wide(Co) ? wino_f32_avx512::output_chunk : wino_f32_avx2::output_chunk)(
      M, ms, H, W, Co, k0, count, bias, add, y, relu);
}

void upsample_input_chunk(const float* x, const float* zeros, int64_t H, int64_t W, int64_t Ci,
                          int p, int64_t k0, int64_t count, int64_t tiles, float* V) {
  (wide(Ci) ? wino_f32_avx512::upsample_input_chunk : wino_f32_avx2::upsample_input_chunk)(
      x, zeros, H, W, Ci, p, k0, count, tiles, V);
}

void upsample_output_chunk(const float* M, size_t ms, int64_t H, int64_t W, int64_t Co, int p,
                           int64_t k0, int64_t count, const float* bias, float* y) {
  (wide(Co) ? wino_f32_avx512::upsample_output_chunk : wino_f32_avx2::upsample_output_chunk)(
      M, ms, H, W, Co, p, k0, count, bias, y);
}

}  // namespace sdc::cpu::winograd_f32
