// AttentionKernel: oneDNN matmuls on strided per-head views, own softmax in between.
#include "backend/cpu/attention.h"

#include "backend/cpu/attention_avx512.h"
#include "backend/cpu/attention_int8.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/memory_plan.h"
#include "backend/cpu/reference_impls.h"
#include "backend/cpu/simd.h"
#include "backend/cpu/simd_avx2.h"

namespace sdc::cpu {
namespace {

using dnnl::memory;
using dt = memory::data_type;

dt dnnl_type(DType t) {
  return t == DType::BF16 ? dt::bf16 : dt::f32;
}

// Row softmax of scores s[0..len) scaled by `scale`, into p[0..Tk) (zeros past len).
template <class T>
SDC_AVX512 void softmax_row_avx512(const float* s, T* p, int64_t len, int64_t Tk, float scale) {
  __m512 mx = _mm512_set1_ps(-INFINITY);
  for (int64_t j = 0; j < len; j += 16) {
    const __mmask16 m = simd::tail_mask(len - j);
    mx = _mm512_mask_max_ps(mx, m, mx, _mm512_maskz_loadu_ps(m, s + j));
  }
  const __m512 vmax = _mm512_set1_ps(simd::hmax(mx));
  const __m512 vscale = _mm512_set1_ps(scale);
  __m512 sum = _mm512_setzero_ps();
  // First pass writes exp into the f32 scores (in place), second scales into p.
  float* e = const_cast<float*>(s);
  for (int64_t j = 0; j < len; j += 16) {
    const __mmask16 m = simd::tail_mask(len - j);
    const __m512 x =
        simd::exp(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + j), vmax), vscale));
    sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(m, x));
    _mm512_mask_storeu_ps(e + j, m, x);
  }
  const __m512 inv = _mm512_set1_ps(1.f / simd::hsum(sum));
  for (int64_t j = 0; j < Tk; j += 16) {
    const __mmask16 m = simd::tail_mask(Tk - j);
    const __mmask16 valid = j < len ? simd::tail_mask(len - j) : __mmask16(0);
    const __m512 x = _mm512_maskz_mul_ps(valid, _mm512_maskz_loadu_ps(valid, e + j), inv);
    simd::store(p + j, x, m);
  }
}

// The same on 8 lanes, for CPUs without AVX-512 (the scalar exp made attention ~5x slower there
// than its matmuls: 4096 tokens x 320 channels, 315 ms a layer under DNNL_MAX_CPU_ISA=AVX2).
template <class T>
SDC_AVX2 void softmax_row_avx2(const float* s, T* p, int64_t len, int64_t Tk, float scale) {
  __m256 mx = _mm256_set1_ps(-INFINITY);
  int64_t j = 0;
  for (; j + 8 <= len; j += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(s + j));
  float top = simd256::hmax(mx);
  for (; j < len; ++j) top = std::max(top, s[j]);
  const __m256 vmax = _mm256_set1_ps(top), vscale = _mm256_set1_ps(scale);
  __m256 sum = _mm256_setzero_ps();
  // First pass writes exp into the f32 scores (in place), second scales into p.
  float* e = const_cast<float*>(s);
  for (j = 0; j < len; j += 8) {
    const __m256i m = simd256::tail_mask(len - j);
    const __m256 x = _mm256_and_ps(
        simd256::exp(_mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(s + j, m), vmax), vscale)),
        _mm256_castsi256_ps(m));
    sum = _mm256_add_ps(sum, x);
    _mm256_maskstore_ps(e + j, m, x);
  }
  const float inv = 1.f / simd256::hsum(sum);
  if constexpr (std::is_same_v<T, float>) {
    const __m256 vinv = _mm256_set1_ps(inv);
    for (j = 0; j < Tk; j += 8) {
      const __m256i valid = simd256::tail_mask(std::max<int64_t>(len - j, 0));
      const __m256 x = _mm256_mul_ps(_mm256_maskload_ps(e + j, valid), vinv);
      _mm256_maskstore_ps(p + j, simd256::tail_mask(Tk - j), x);
    }
  } else {
    for (j = 0; j < Tk; ++j) scalar::store(p + j, j < len ? e[j] * inv : 0.f);
  }
}

template <class T>
void softmax_row_scalar(const float* s, T* p, int64_t len, int64_t Tk, float scale) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < len; ++j) mx = std::max(mx, s[j]);
  float* e = const_cast<float*>(s);
  double sum = 0;
  for (int64_t j = 0; j < len; ++j) {
    e[j] = std::exp((s[j] - mx) * scale);
    sum += e[j];
  }
  const float inv = float(1.0 / sum);
  for (int64_t j = 0; j < Tk; ++j) scalar::store(p + j, j < len ? e[j] * inv : 0.f);
}

template <class T>
void softmax_rows(const float* s, T* p, int64_t rows, int64_t q0, int64_t Tk, bool causal,
                  float scale) {
  const KernelIsa isa = kernel_isa();
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t len = causal ? std::min(Tk, q0 + r + 1) : Tk;
    if (isa == KernelIsa::Avx512)
      softmax_row_avx512(s + r * Tk, p + r * Tk, len, Tk, scale);
    else if (isa == KernelIsa::Avx2)
      softmax_row_avx2(s + r * Tk, p + r * Tk, len, Tk, scale);
    else
      softmax_row_scalar(s + r * Tk, p + r * Tk, len, Tk, scale);
  }
}

}  // namespace

AttentionKernel::AttentionKernel(const AttentionShape& s, const dnnl::engine& engine, int threads)
    : s_(s), engine_(engine), threads_(threads) {
  d_ = s.C / s.heads;
  if (s.int8 && Int8Attention::supported(s)) {
    int8_ = std::make_unique<Int8Attention>(s, threads);
    bq_ = int8_->block_rows();
    return;
  }
  // Heads up to 160 wide (the UNet's 40/80/160, CLIP's 64) take the micro-kernels; in bf16 the
  // VAE's one 512-wide head runs 1.4x faster as oneDNN matmul tiles (68 against 96 ms at 512x512
  // on Zen 5), whose K = 512 is deep enough for them while the UNet's heads are not (2.2x
  // slower). In f32 the micro-kernels stay ahead there too (7.5 against 8.7 ms at 256x256).
  if (FlashAttention::supported(s) && (d_ <= kMaxFlashHeadWidth || s.in != DType::BF16)) {
    flash_ = std::make_unique<FlashAttention>(s, threads);
    bq_ = flash_->block_rows();
    return;
  }
  // Scores block of ~512 KiB per thread, 16..256 rows.
  bq_ = std::clamp<int64_t>((512 * 1024 / 4) / std::max<int64_t>(s.Tk, 1), 16, 256);
  bq_ = std::min(bq_, s.Tq);
  const int64_t tail = s.Tq % bq_;
  const dt in = dnnl_type(s.in), out = dnnl_type(s.out);
  const DType p_type = s.in;  // probabilities in the matmul input type
  auto qk = [&](int64_t rows) {
    return make_mm(memory::desc({rows, d_}, in, memory::dims{s.C, 1}),
                   memory::desc({d_, s.Tk}, in, memory::dims{1, s.C}),
                   memory::desc({rows, s.Tk}, dt::f32, memory::dims{s.Tk, 1}));
  };
  auto pv = [&](int64_t rows) {
    return make_mm(memory::desc({rows, s.Tk}, dnnl_type(p_type), memory::dims{s.Tk, 1}),
                   memory::desc({s.Tk, d_}, in, memory::dims{s.C, 1}),
                   memory::desc({rows, d_}, out, memory::dims{s.C, 1}));
  };
  // Each tile runs on one thread (the work items are spread over threads), so the primitives
  // are created for one thread.
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  qk_full_ = qk(bq_);
  pv_full_ = pv(bq_);
  if (tail) {
    qk_tail_ = qk(tail);
    pv_tail_ = pv(tail);
  }
  omp_set_num_threads(saved);
  for (int t = 0; t < threads_; ++t) streams_.emplace_back(engine_);
  scratch_per_thread_ = arena_aligned(size_t(bq_ * s.Tk) * 4) +
                        (s.in == DType::BF16 ? arena_aligned(size_t(bq_ * s.Tk) * 2) : 0) +
                        arena_aligned(pad_bytes_);
}

AttentionKernel::~AttentionKernel() = default;

size_t AttentionKernel::scratch_bytes() const {
  if (int8_) return int8_->scratch_bytes();
  return flash_ ? flash_->scratch_bytes() : scratch_per_thread_ * size_t(threads_);
}

AttentionKernel::Mm AttentionKernel::make_mm(const memory::desc& a, const memory::desc& b,
                                             const memory::desc& c) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr, engine_);
  note_primitive("attention matmul tiles", pd.impl_info_str());
  Mm mm;
  mm.prim = dnnl::matmul(pd);
  pad_bytes_ = std::max(pad_bytes_, pd.scratchpad_desc().get_size());
  for (int t = 0; t < threads_; ++t) {
    mm.src.emplace_back(a, engine_, nullptr);
    mm.wei.emplace_back(b, engine_, nullptr);
    mm.dst.emplace_back(c, engine_, nullptr);
    mm.pad.emplace_back(pd.scratchpad_desc(), engine_, nullptr);
  }
  return mm;
}

void AttentionKernel::exec(const Mm& mm, int t, const void* a, const void* b, void* c,
                           void* pad) const {
  const dnnl::memory &ma = mm.src[size_t(t)], &mb = mm.wei[size_t(t)], &mc = mm.dst[size_t(t)],
                     &mp = mm.pad[size_t(t)];
  const_cast<dnnl::memory&>(ma).set_data_handle(const_cast<void*>(a));
  const_cast<dnnl::memory&>(mb).set_data_handle(const_cast<void*>(b));
  const_cast<dnnl::memory&>(mc).set_data_handle(c);
  const_cast<dnnl::memory&>(mp).set_data_handle(pad);
  const dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, ma.get()},
                                   {DNNL_ARG_WEIGHTS, mb.get()},
                                   {DNNL_ARG_DST, mc.get()},
                                   {DNNL_ARG_SCRATCHPAD, mp.get()}};
  dnnl::error::wrap_c_api(dnnl_primitive_execute(mm.prim.get(), streams_[size_t(t)].get(), 4, args),
                          "attention matmul");
}

void AttentionKernel::run(const void* q, const void* k, const void* v, void* out,
                          void* scratch) const {
  if (int8_) return int8_->run(q, k, v, out, scratch);
  if (flash_) return flash_->run(q, k, v, out, scratch);
  const int64_t nqb = (s_.Tq + bq_ - 1) / bq_;
  const int64_t items = s_.N * s_.heads * nqb;
  const size_t in_size = s_.in == DType::BF16 ? 2 : 4, out_size = s_.out == DType::BF16 ? 2 : 4;
  const float scale = 1.f / std::sqrt(float(d_));
#pragma omp parallel num_threads(threads_)
  {
    const int t = omp_get_thread_num();
    auto* base = static_cast<uint8_t*>(scratch) + scratch_per_thread_ * size_t(t);
    float* S = reinterpret_cast<float*>(base);
    uint8_t* next = base + arena_aligned(size_t(bq_ * s_.Tk) * 4);
    void* P = S;
    if (s_.in == DType::BF16) {
      P = next;
      next += arena_aligned(size_t(bq_ * s_.Tk) * 2);
    }
    void* pad = next;
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t qb = item % nqb, h = (item / nqb) % s_.heads, n = item / (nqb * s_.heads);
      const int64_t q0 = qb * bq_, rows = std::min(bq_, s_.Tq - q0);
      const bool full = rows == bq_;
      const size_t q_off = size_t((n * s_.Tq + q0) * s_.C + h * d_);
      const size_t kv_off = size_t(n * s_.Tk * s_.C + h * d_);
      exec(full ? qk_full_ : qk_tail_, t, static_cast<const uint8_t*>(q) + q_off * in_size,
           static_cast<const uint8_t*>(k) + kv_off * in_size, S, pad);
      if (s_.in == DType::BF16)
        softmax_rows(S, static_cast<uint16_t*>(P), rows, q0, s_.Tk, s_.causal, scale);
      else
        softmax_rows(S, static_cast<float*>(P), rows, q0, s_.Tk, s_.causal, scale);
      exec(full ? pv_full_ : pv_tail_, t, P, static_cast<const uint8_t*>(v) + kv_off * in_size,
           static_cast<uint8_t*>(out) + q_off * out_size, pad);
    }
  }
}

}  // namespace sdc::cpu
