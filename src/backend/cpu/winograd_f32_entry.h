// The entry points of one width's build of the f32 Winograd transforms (winograd_f32_transforms.h
// declares them): included once by winograd_f32_avx2.cpp and once by winograd_f32_avx512.cpp,
// each of which first defines SDC_WINO_F32_TARGET (its target attribute), SDC_WINO_F32_LANES (its
// lanes policy, winograd_f32_lanes.h) and SDC_WINO_F32_NAMESPACE (wino_f32_avx2 or
// wino_f32_avx512).
#pragma once

#if !defined(SDC_WINO_F32_TARGET) || !defined(SDC_WINO_F32_LANES) || \
    !defined(SDC_WINO_F32_NAMESPACE)
#error \
    "winograd_f32_entry.h: define SDC_WINO_F32_TARGET, SDC_WINO_F32_LANES and SDC_WINO_F32_NAMESPACE first"
#endif

#include "backend/cpu/winograd_f32_kernel.h"
#include "backend/cpu/winograd_f32_lanes.h"
#include "backend/cpu/winograd_f32_transforms.h"
#include "backend/cpu/winograd_f4_kernel.h"

namespace sdc::cpu::SDC_WINO_F32_NAMESPACE {

using L = SDC_WINO_F32_LANES;

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

void up4_input_chunk(const float* x, const float* zeros, const WinogradF4Conv::Shape& s, int p,
                     int64_t k0, int64_t count, int64_t tiles, float* V) {
  wino4_kernel::phase_input_chunk<L>(x, zeros, s, p, k0, count, tiles, V);
}

void up4_output_chunk(const float* M, size_t ms, const WinogradF4Conv::Shape& s, int p, int64_t k0,
                      int64_t count, const float* bias, float* y) {
  wino4_kernel::phase_output_chunk<L>(M, ms, s, p, k0, count, bias, y);
}

}  // namespace sdc::cpu::SDC_WINO_F32_NAMESPACE
