// Elementwise activations, broadcasting arithmetic, f32 -> bf16 conversion: memory-bound loops,
// parallel over fixed-size chunks, AVX-512 bodies with scalar twins.
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/kernels_internal.h"
#include "backend/cpu/simd.h"

namespace sdc::cpu {
namespace {

constexpr int64_t kChunk = 16384;  // values per parallel work item

template <class F>
void parallel_chunks(int64_t n, F&& body) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) body(c * kChunk, std::min(n, (c + 1) * kChunk));
}

template <class T>
SDC_AVX512 void unary_avx512(Unary op, const float* x, T* y, int64_t b, int64_t e, float s,
                             float bias) {
  for (int64_t i = b; i < e; i += 16) {
    const __mmask16 m = simd::tail_mask(e - i);
    __m512 v = simd::load(x + i, m);
    switch (op) {
      case Unary::Gelu:
        v = simd::gelu(v);
        break;
      case Unary::QuickGelu:
        v = simd::swish(v, 1.702f);
        break;
      case Unary::Silu:
        v = simd::swish(v, 1.f);
        break;
      case Unary::Relu:
        v = _mm512_max_ps(v, _mm512_setzero_ps());
        break;
      case Unary::Tanh:
        v = simd::tanh(v);
        break;
      case Unary::Scale:
        v = _mm512_fmadd_ps(v, _mm512_set1_ps(s), _mm512_set1_ps(bias));
        break;
    }
    simd::store(y + i, v, m);
  }
}

template <class T>
void unary_scalar(Unary op, const float* x, T* y, int64_t b, int64_t e, float s, float bias) {
  for (int64_t i = b; i < e; ++i) {
    float v = x[i];
    switch (op) {
      case Unary::Gelu:
        v = scalar::gelu(v);
        break;
      case Unary::QuickGelu:
        v = scalar::swish(v, 1.702f);
        break;
      case Unary::Silu:
        v = scalar::swish(v, 1.f);
        break;
      case Unary::Relu:
        v = std::max(v, 0.f);
        break;
      case Unary::Tanh:
        v = std::tanh(v);
        break;
      case Unary::Scale:
        v = v * s + bias;
        break;
    }
    scalar::store(y + i, v);
  }
}

template <class T>
void unary_t(Unary op, const float* x, T* y, int64_t n, float s, float bias) {
  const bool v512 = use_avx512_kernels();
  parallel_chunks(n, [&](int64_t b, int64_t e) {
    if (v512)
      unary_avx512(op, x, y, b, e, s, bias);
    else
      unary_scalar(op, x, y, b, e, s, bias);
  });
}

template <class T>
SDC_AVX512 void geglu_row_avx512(const float* x, T* y, int64_t D) {
  for (int64_t i = 0; i < D; i += 16) {
    const __mmask16 m = simd::tail_mask(D - i);
    const __m512 a = simd::load(x + i, m), g = simd::load(x + D + i, m);
    simd::store(y + i, _mm512_mul_ps(a, simd::gelu(g)), m);
  }
}

template <class T>
void geglu_t(const float* x, T* y, int64_t rows, int64_t D) {
  const bool v512 = use_avx512_kernels();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * 2 * D;
    T* yr = y + r * D;
    if (v512) {
      geglu_row_avx512(xr, yr, D);
    } else {
      for (int64_t i = 0; i < D; ++i) scalar::store(yr + i, xr[i] * scalar::gelu(xr[D + i]));
    }
  }
}

SDC_AVX512 void binary_avx512(bool add, const float* a, const float* b, float* y, int64_t n,
                              bool scalar_b) {
  const __m512 bs = scalar_b ? _mm512_set1_ps(b[0]) : _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = simd::tail_mask(n - i);
    const __m512 va = simd::load(a + i, m);
    const __m512 vb = scalar_b ? bs : simd::load(b + i, m);
    simd::store(y + i, add ? _mm512_add_ps(va, vb) : _mm512_mul_ps(va, vb), m);
  }
}

void binary_span(bool add, const float* a, const float* b, float* y, int64_t n, bool scalar_b) {
  if (use_avx512_kernels()) return binary_avx512(add, a, b, y, n, scalar_b);
  for (int64_t i = 0; i < n; ++i) {
    const float vb = scalar_b ? b[0] : b[i];
    y[i] = add ? a[i] + vb : a[i] * vb;
  }
}

SDC_AVX512 void to_bf16_avx512(const float* x, uint16_t* y, int64_t b, int64_t e) {
  for (int64_t i = b; i < e; i += 16) {
    const __mmask16 m = simd::tail_mask(e - i);
    simd::store(y + i, simd::load(x + i, m), m);
  }
}

}  // namespace

void unary(Unary op, const float* x, void* y, DType ydt, int64_t n, float scale, float bias) {
  if (ydt == DType::BF16)
    unary_t(op, x, static_cast<uint16_t*>(y), n, scale, bias);
  else
    unary_t(op, x, static_cast<float*>(y), n, scale, bias);
}

void geglu(const float* x, void* y, DType ydt, int64_t rows, int64_t D) {
  if (ydt == DType::BF16)
    geglu_t(x, static_cast<uint16_t*>(y), rows, D);
  else
    geglu_t(x, static_cast<float*>(y), rows, D);
}

void binary(Binary op, Broadcast bc, const float* a, const float* b, float* y, int64_t N,
            int64_t inner, int64_t C) {
  const bool add = op == Binary::Add;
  if (bc == Broadcast::BatchChannel) {
    // One row of C per (n, inner position): the broadcast operand is row n of b.
    const int64_t rows = N * inner;
#pragma omp parallel for schedule(static) if (rows * C > kChunk)
    for (int64_t r = 0; r < rows; ++r)
      binary_span(add, a + r * C, b + (r / inner) * C, y + r * C, C, false);
    return;
  }
  const int64_t n = N * inner * C;
  parallel_chunks(n, [&](int64_t s, int64_t e) {
    binary_span(add, a + s, bc == Broadcast::Scalar ? b : b + s, y + s, e - s,
                bc == Broadcast::Scalar);
  });
}

void convert_span_to_bf16(const float* x, uint16_t* y, int64_t n) {
  if (use_avx512_kernels()) return to_bf16_avx512(x, y, 0, n);
  for (int64_t i = 0; i < n; ++i) y[i] = f32_to_bf16(x[i]);
}

void convert_to_bf16(const float* x, uint16_t* y, int64_t n) {
  const bool v512 = use_avx512_kernels();
  parallel_chunks(n, [&](int64_t b, int64_t e) {
    if (v512)
      to_bf16_avx512(x, y, b, e);
    else
      for (int64_t i = b; i < e; ++i) y[i] = f32_to_bf16(x[i]);
  });
}

void copy_f32(const float* x, float* y, int64_t n) {
  parallel_chunks(n, [&](int64_t b, int64_t e) { std::copy(x + b, x + e, y + b); });
}

}  // namespace sdc::cpu
