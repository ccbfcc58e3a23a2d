// One-pass W8A8 weight packing (see int8_weights.h): per row, convert to f32, take the absolute
// maximum, quantise, and scatter the s8 values through precomputed offset tables into the blocked
// layout. The tables follow from oneDNN's blocked descriptor: the offset of an element is a sum
// of one term per dim (outer block index x stride, plus its place inside the inner blocks).
#include "backend/cpu/int8_weights.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <vector>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/dnnl_util.h"
#include "backend/cpu/simd.h"
#include "common/error.h"

namespace sdc::cpu {
namespace {

// Offset (in elements) that index i of dim `dim` contributes in a blocked descriptor: inner
// blocks are listed outermost first, the last one has stride 1.
int64_t dim_offset(const dnnl_memory_desc_t& d, int dim, int64_t i) {
  const dnnl_blocking_desc_t& b = d.format_desc.blocking;
  int64_t block = 1;
  for (int k = 0; k < b.inner_nblks; ++k)
    if (b.inner_idxs[k] == dim) block *= b.inner_blks[k];
  int64_t off = i / block * b.strides[dim], inner_stride = 1, div = 1;
  for (int k = b.inner_nblks - 1; k >= 0; --k) {
    if (b.inner_idxs[k] == dim) {
      off += i / div % b.inner_blks[k] * inner_stride;
      div *= b.inner_blks[k];
    }
    inner_stride *= b.inner_blks[k];
  }
  return off;
}

// Where the s8 value (r, j) of the row-major [rows, row] source goes: row_base[r] + in_row[j];
// row r's int32 compensation (when the layout has one) at byte `compensation` + 4r.
struct Scatter {
  std::vector<int64_t> row_base, in_row;
  int64_t rows_per_block = 1;  // rows sharing the layout's innermost blocks (and cache lines)
  bool has_compensation = false;
  size_t compensation = 0;  // bytes of blocked data before it
  size_t end = 0;           // bytes of blocked data and compensation
  bool padded = false;      // some dim is padded: bytes no source value lands on must read 0
};

constexpr uint64_t kZeroPointCompensation = dnnl_memory_extra_flag_compensation_conv_asymmetric_src;

// The scatter tables from `src_md` (plain s8 in the source's layout) to `dst_md`, or nothing
// for a layout this writer does not handle. The source's `rows` quantisation rows are its
// outermost dims by stride (one dim, the output channel, for a convolution or a matmul; a
// Winograd kernel's [point, output channel]); 0: the outermost dim alone.
std::optional<Scatter> scatter_of(const dnnl::memory::desc& src_md,
                                  const dnnl::memory::desc& dst_md, int64_t rows) {
  const dnnl_memory_desc_t &s = src_md.data, &d = dst_md.data;
  if (s.format_kind != dnnl_blocked || d.format_kind != dnnl_blocked || s.ndims != d.ndims ||
      s.data_type != dnnl_s8 || d.data_type != dnnl_s8 || s.offset0 != 0 || d.offset0 != 0 ||
      s.format_desc.blocking.inner_nblks != 0 || s.extra.flags != 0)
    return std::nullopt;
  const int n = s.ndims;
  const dnnl_dims_t& stride = s.format_desc.blocking.strides;
  std::vector<int> order(static_cast<size_t>(n));  // the source's dims, outermost first
  for (int k = 0; k < n; ++k) {
    if (s.dims[k] != d.dims[k] || d.padded_offsets[k] != 0) return std::nullopt;
    order[size_t(k)] = k;
  }
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return stride[a] > stride[b]; });
  if (rows == 0) rows = s.dims[order[0]];
  int row_dims = 0;  // order[0 .. row_dims) index the rows
  for (int64_t r = 1; r < rows && row_dims < n;) r *= s.dims[order[size_t(row_dims++)]];
  if (row_dims == 0) row_dims = 1;
  int64_t spanned = 1;
  for (int k = 0; k < row_dims; ++k) spanned *= s.dims[order[size_t(k)]];
  if (spanned != rows) return std::nullopt;
  const int row_dim = order[size_t(row_dims - 1)];  // the rows' innermost dim
  Scatter sc;
  if (d.extra.flags == kZeroPointCompensation && row_dims == 1 &&
      d.extra.asymm_compensation_mask == 1 << row_dim)
    sc.has_compensation = true;
  else if (d.extra.flags != 0)
    return std::nullopt;
  const int64_t row = stride[row_dim];
  int64_t source_numel = 1;
  for (int k = 0; k < n; ++k) {
    source_numel *= s.dims[k];
    sc.padded = sc.padded || d.padded_dims[k] != d.dims[k];
  }
  if (source_numel != rows * row) return std::nullopt;  // not a dense source
  // The blocked data's extent; the compensation follows it (oneDNN sizes the whole a little
  // larger still: the slack after it is left for the caller to clear).
  const dnnl_blocking_desc_t& b = d.format_desc.blocking;
  int64_t extent = 0;
  for (int k = 0; k < n; ++k) {
    int64_t block = 1;
    for (int i = 0; i < b.inner_nblks; ++i)
      if (b.inner_idxs[i] == k) block *= b.inner_blks[i];
    extent = std::max(extent, d.padded_dims[k] / block * b.strides[k]);
  }
  sc.compensation = size_t(extent);
  sc.end = sc.compensation +
           (sc.has_compensation ? size_t(d.padded_dims[row_dim]) * sizeof(int32_t) : 0);
  if (sc.end > dst_md.get_size()) return std::nullopt;
  // Element (r, j) is the source's element r * row + j: its index in dim k is that / stride % size.
  sc.row_base.assign(size_t(rows), 0);
  for (int i = 0; i < row_dims; ++i) {
    const int k = order[size_t(i)];
    for (int64_t r = 0; r < rows; ++r)
      sc.row_base[size_t(r)] += dim_offset(d, k, r * row / stride[k] % s.dims[k]);
  }
  sc.in_row.assign(size_t(row), 0);
  for (int i = row_dims; i < n; ++i) {
    const int k = order[size_t(i)];
    for (int64_t j = 0; j < row; ++j)
      sc.in_row[size_t(j)] += dim_offset(d, k, j / stride[k] % s.dims[k]);
  }
  const int64_t last = *std::max_element(sc.row_base.begin(), sc.row_base.end()) +
                       *std::max_element(sc.in_row.begin(), sc.in_row.end());
  if (last < 0 || size_t(last) >= sc.compensation) return std::nullopt;  // not the layout we think
  for (int k = 0; k < b.inner_nblks; ++k)
    if (b.inner_idxs[k] == row_dim) sc.rows_per_block *= b.inner_blks[k];
  return sc;
}

SDC_AVX512 void f16_row_avx512(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = simd::tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + i)));
  }
}

// Row r of `t` as f32 in `buffer`.
const float* row_f32(const TensorRef& t, int64_t r, int64_t row, bool v512, float* buffer) {
  const auto* src = static_cast<const uint8_t*>(t.data) + size_t(r * row) * dtype_size(t.dtype);
  if (t.dtype == DType::F16 && v512)
    f16_row_avx512(reinterpret_cast<const uint16_t*>(src), buffer, row);
  else
    convert_to_f32(t.dtype, src, buffer, size_t(row));
  return buffer;
}

// max |w[k]| as std::max(m, |w[k]|) folds it (vmaxps returns its second operand for a NaN).
SDC_AVX512 float absmax_avx512(const float* w, int64_t n) {
  __m512 m = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16)
    m = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(simd::tail_mask(n - i), w + i)), m);
  return _mm512_reduce_max_ps(m);
}

// clamp(round(w * inv), -127, 127) into q; returns the sum of the values. Rounding to nearest
// even, as std::nearbyint in the default mode.
SDC_AVX512 int32_t quantize_avx512(const float* w, int64_t n, float inv, int8_t* q) {
  const __m512 s = _mm512_set1_ps(inv), lo = _mm512_set1_ps(-127.f), hi = _mm512_set1_ps(127.f);
  __m512i sum = _mm512_setzero_si512();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = simd::tail_mask(n - i);
    const __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, w + i), s),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512i v = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(r, lo), hi));
    sum = _mm512_add_epi32(sum, v);  // masked-off lanes loaded 0
    _mm_mask_storeu_epi8(q + i, m, _mm512_cvtsepi32_epi8(v));
  }
  return _mm512_reduce_add_epi32(sum);
}

float absmax(const float* w, int64_t n, bool v512) {
  if (v512) return absmax_avx512(w, n);
  float m = 0.f;
  for (int64_t k = 0; k < n; ++k) m = std::max(m, std::fabs(w[k]));
  return m;
}

int32_t quantize(const float* w, int64_t n, float inv, int8_t* q, bool v512) {
  if (v512) return quantize_avx512(w, n, inv, q);
  int32_t sum = 0;
  for (int64_t k = 0; k < n; ++k) {
    q[k] = int8_t(std::clamp(std::nearbyint(w[k] * inv), -127.f, 127.f));
    sum += q[k];
  }
  return sum;
}

}  // namespace

bool writes_int8_layout(const dnnl::memory::desc& src_md, const dnnl::memory::desc& dst_md,
                        int64_t rows) {
  return scatter_of(src_md, dst_md, rows).has_value();
}

Int8Packed pack_int8_weight(const TensorRef& t, const dnnl::memory::desc& src_md,
                            const dnnl::memory::desc& dst_md, const dnnl::engine& engine) {
  if (!is_float(t.dtype))
    throw Error("int8 weights", "source", "a float tensor", std::string(dtype_name(t.dtype)));
  const int64_t rows = t.shape.at(0), row = t.numel() / rows;
  if (int64_t(src_md.get_size()) != t.numel())
    throw Error("int8 weights", "layout", std::to_string(t.numel()) + " s8 values",
                std::to_string(src_md.get_size()));
  const std::optional<Scatter> sc = scatter_of(src_md, dst_md, rows);
  Int8Packed out;
  out.scales = std::make_shared<PackedWeight>(size_t(rows) * sizeof(float));
  float* scale = static_cast<float*>(out.scales->data());
  out.sums = std::make_shared<PackedWeight>(size_t(rows) * sizeof(int32_t));
  int32_t* sums = static_cast<int32_t*>(out.sums->data());
  std::vector<int8_t> plain(sc ? 0 : size_t(t.numel()));  // the reorder's source
  uint8_t* dst = nullptr;
  int32_t* compensation = nullptr;
  if (sc) {
    out.values = std::make_shared<PackedWeight>(dst_md.get_size());
    dst = static_cast<uint8_t*>(out.values->data());
    if (sc->padded) std::memset(dst, 0, sc->end);
    std::memset(dst + sc->end, 0, dst_md.get_size() - sc->end);  // slack: same bytes every time
    if (sc->has_compensation) compensation = reinterpret_cast<int32_t*>(dst + sc->compensation);
  }
  const bool v512 = use_avx512_kernels();
  // Whole blocks of rows per task: rows of one block share the destination's cache lines, so
  // the block is quantised into a tile first and scattered column by column (consecutive rows
  // land a few bytes apart), which keeps the writes in L1.
  const int64_t block = sc ? std::max<int64_t>(sc->rows_per_block, 16) : 16;
  const int64_t blocks = (rows + block - 1) / block;
#pragma omp parallel
  {
    std::vector<float> values(static_cast<size_t>(row));
    std::vector<int8_t> tile(sc ? size_t(block * row) : 0);
    std::vector<uint8_t*> bases(static_cast<size_t>(block));
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t r0 = b * block, n = std::min(rows, r0 + block) - r0;
      for (int64_t r = r0; r < r0 + n; ++r) {
        const float* w = row_f32(t, r, row, v512, values.data());
        const float m = absmax(w, row, v512);
        scale[r] = m > 0.f ? m / 127.f : 1.f;
        int8_t* qr = sc ? tile.data() + (r - r0) * row : plain.data() + r * row;
        const int32_t sum = quantize(w, row, 1.f / scale[r], qr, v512);
        sums[r] = sum;
        if (compensation) compensation[r] = -sum;
      }
      if (!sc) continue;
      for (int64_t i = 0; i < n; ++i) bases[size_t(i)] = dst + sc->row_base[size_t(r0 + i)];
      for (int64_t j = 0; j < row; ++j) {
        const int64_t at = sc->in_row[size_t(j)];
        for (int64_t i = 0; i < n; ++i) bases[size_t(i)][at] = uint8_t(tile[size_t(i * row + j)]);
      }
    }
  }
  if (!sc) out.values = reorder_into(plain.data(), src_md, dst_md, engine, true);
  return out;
}

}  // namespace sdc::cpu
