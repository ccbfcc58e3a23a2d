// The few-output-channel 3x3 convolution (narrow_conv.h).
#include "backend/cpu/narrow_conv.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/kernel_transform.h"
#include "backend/cpu/narrow_conv_rows.h"
#include "common/error.h"

namespace sdc::cpu {
namespace {

// Whether f32 values of Ci channels take the AVX-512 rows (else the AVX2 ones).
bool wide_f32(int64_t Ci) {
  return use_avx512_kernels() && Ci % 16 == 0;
}

// Each thread's share of the N H output rows, in one block of consecutive rows (consecutive rows
// share two of their three input rows in the cache).
template <class Rows>
void split_rows(int64_t rows, int threads, const Rows& run) {
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num(), n = omp_get_num_threads();
    const int64_t r0 = rows * t / n, r1 = rows * (t + 1) / n;
    if (r0 < r1) run(r0, r1);
  }
}

}  // namespace

bool narrow_conv_pays(int64_t Ci, int64_t Co, DType in) {
  if (Co < 1 || Co > 4 || Ci <= 0) return false;
  if (in == DType::BF16) return use_avx512_kernels() && cpu_features().avx512_bf16 && Ci % 32 == 0;
  return in == DType::F32 && (wide_f32(Ci) || (kernel_isa() != KernelIsa::Scalar && Ci % 8 == 0));
}

TensorRef narrow_conv_taps(const TensorRef& w) {
  check_3x3_kernel(w, "narrow convolution weight");
  const int64_t Co = w.shape[0], Ci = w.shape[1];
  thread_local std::vector<float> staging;
  staging.resize(size_t(9 * Co * Ci));
  float* out = staging.data();
  for_each_3x3_kernel(w, [out, Co, Ci](int64_t o, int64_t i, const float* k) {
    for (int t = 0; t < 9; ++t) out[size_t((t * Co + o) * Ci + i)] = k[t];
  });
  return staged_tensor(staging, Shape{9, Co, Ci}, w.source);
}

void narrow_conv3x3(const void* x, DType xt, const void* taps, const float* bias, int64_t N,
                    int64_t H, int64_t W, int64_t Ci, int64_t Co, void* y, DType yt, int threads) {
  if (!narrow_conv_pays(Ci, Co, xt))
    throw Error(
        "narrow_conv.cpp", "narrow convolution channels",
        "1-4 outputs; f32 inputs a multiple of 8 with AVX2 (of 16 for AVX-512), bf16 ones "
        "a multiple of 32 with AVX-512 BF16",
        std::string(dtype_name(xt)) + " " + std::to_string(Ci) + " -> " + std::to_string(Co));
  if (yt != DType::F32 && yt != DType::BF16)
    throw Error("narrow_conv.cpp", "narrow convolution output", "f32 or bf16",
                std::string(dtype_name(yt)));
  threads = std::max(1, threads);
  if (xt == DType::BF16) {
    const auto* xb = static_cast<const uint16_t*>(x);
    const auto* tb = static_cast<const uint16_t*>(taps);
    split_rows(N * H, threads, [&](int64_t r0, int64_t r1) {
      narrow_avx512::rows(xb, tb, bias, H, W, Ci, Co, r0, r1, y, yt);
    });
    return;
  }
  const auto* xf = static_cast<const float*>(x);
  const auto* tf = static_cast<const float*>(taps);
  using Rows = void (*)(const float*, const float*, const float*, int64_t, int64_t, int64_t,
                        int64_t, int64_t, int64_t, void*, DType);
  const Rows rows = wide_f32(Ci) ? Rows(narrow_avx512::rows) : Rows(narrow_avx2::rows);
  split_rows(N * H, threads,
             [&](int64_t r0, int64_t r1) { rows(xf, tf, bias, H, W, Ci, Co, r0, r1, y, yt); });
}

}  // namespace sdc::cpu
