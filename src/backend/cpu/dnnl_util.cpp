// Descriptor keys and weight packing through oneDNN reorders.
#include "backend/cpu/dnnl_util.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/simd.h"

namespace sdc::cpu {

std::string md_key(const dnnl::memory::desc& md) {
  const dnnl_memory_desc_t& d = md.data;
  std::string k =
      "dt" + std::to_string(int(d.data_type)) + " fk" + std::to_string(int(d.format_kind)) + " d";
  for (int i = 0; i < d.ndims; ++i) k += std::to_string(d.dims[i]) + ",";
  k += " pd";
  for (int i = 0; i < d.ndims; ++i) k += std::to_string(d.padded_dims[i]) + ",";
  if (d.format_kind == dnnl_blocked) {
    const dnnl_blocking_desc_t& b = d.format_desc.blocking;
    k += " s";
    for (int i = 0; i < d.ndims; ++i) k += std::to_string(b.strides[i]) + ",";
    k += " ib";
    for (int i = 0; i < b.inner_nblks; ++i)
      k += std::to_string(b.inner_idxs[i]) + ":" + std::to_string(b.inner_blks[i]) + ",";
  }
  k += " x" + std::to_string(d.extra.flags) + "/" + std::to_string(d.extra.compensation_mask);
  return k;
}

namespace {

SDC_AVX512 void f16_to_f32_avx512(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i,
                     _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i))));
  for (; i < n; ++i) y[i] = f16_to_f32(x[i]);
}

// Source weights as f32, in parallel chunks (F16 through F16C when the CPU has AVX-512).
void weights_to_f32(const TensorRef& t, float* out) {
  const int64_t n = t.numel(), chunk = 1 << 16;
  const bool fast = t.dtype == DType::F16 && use_avx512_kernels();
  const size_t esize = dtype_size(t.dtype);
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < n; b += chunk) {
    const int64_t e = std::min(n, b + chunk);
    const auto* src = static_cast<const uint8_t*>(t.data) + size_t(b) * esize;
    if (fast)
      f16_to_f32_avx512(reinterpret_cast<const uint16_t*>(src), out + b, e - b);
    else
      convert_to_f32(t.dtype, src, out + b, size_t(e - b));
  }
}

// Staging memory for the f32 copy of a weight, kept between calls so that packing a model does
// not map and fault in a fresh buffer for every tensor.
std::vector<float>& staging() {
  static thread_local std::vector<float> buffer;
  return buffer;
}

}  // namespace

void release_packing_memory() {
  std::vector<float>().swap(staging());
}

namespace {

// The f32 values of `t` in the shared staging buffer (valid until the next call).
const float* staged_f32(const TensorRef& t) {
  std::vector<float>& values = staging();
  if (values.size() < size_t(t.numel())) values.resize(size_t(t.numel()));
  weights_to_f32(t, values.data());
  return values.data();
}

}  // namespace

std::shared_ptr<PackedWeight> reorder_into(const void* data, const dnnl::memory::desc& src_md,
                                           const dnnl::memory::desc& dst_md,
                                           const dnnl::engine& engine, bool zeroed) {
  auto packed = std::make_shared<PackedWeight>(dst_md.get_size());
  if (zeroed) std::memset(packed->data(), 0, packed->bytes());
  dnnl::memory src(src_md, engine, const_cast<void*>(data));
  dnnl::memory dst(dst_md, engine, packed->data());
  dnnl::stream stream(engine);
  dnnl::reorder(src, dst).execute(stream, src, dst);
  stream.wait();
  return packed;
}

std::shared_ptr<PackedWeight> pack_weight(const TensorRef& t, const dnnl::memory::desc& src_md,
                                          const dnnl::memory::desc& dst_md,
                                          const dnnl::engine& engine) {
  return reorder_into(staged_f32(t), src_md, dst_md, engine);
}

std::shared_ptr<PackedWeight> pack_f32(const TensorRef& t) {
  auto packed = std::make_shared<PackedWeight>(size_t(t.numel()) * sizeof(float));
  weights_to_f32(t, static_cast<float*>(packed->data()));
  return packed;
}

}  // namespace sdc::cpu
