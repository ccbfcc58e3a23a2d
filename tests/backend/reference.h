// Straightforward scalar reference implementations (double accumulation) of every graph op, in the
// layouts of graph.h, and helpers to build one-op graphs with random data. The backend tests
// compare the CPU plan against these.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "backend/cpu/plan.h"
#include "common/tensor.h"
#include "graph/graph.h"

namespace sdc::test {

using Vec = std::vector<float>;

inline Vec random_vec(int64_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  Vec v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

// Relative L2 error ||out - ref|| / ||ref|| (double sums).
inline double rel_l2(const Vec& out, const Vec& ref) {
  double d = 0, r = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    d += (double(out[i]) - ref[i]) * (double(out[i]) - ref[i]);
    r += double(ref[i]) * ref[i];
  }
  return std::sqrt(d / r);
}

// max|out - ref| / max|ref| (the fixtures' metric).
inline double rel_err(const float* out, const Vec& ref) {
  double md = 0, mr = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (std::isnan(out[i])) return INFINITY;
    md = std::max(md, std::abs(double(out[i]) - ref[i]));
    mr = std::max(mr, std::abs(double(ref[i])));
  }
  return md / std::max(mr, 1e-30);
}

// The nearest 2x upsampling of x [N, H, W, C], spelled out.
inline Vec upsampled_2x(const Vec& x, int64_t N, int64_t H, int64_t W, int64_t C) {
  Vec u(size_t(N * 4 * H * W * C));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t y = 0; y < 2 * H; ++y)
      for (int64_t xx = 0; xx < 2 * W; ++xx)
        for (int64_t c = 0; c < C; ++c)
          u[size_t(((n * 2 * H + y) * 2 * W + xx) * C + c)] =
              x[size_t(((n * H + y / 2) * W + xx / 2) * C + c)];
  return u;
}

// Rounds values through bf16 (what the BF16 plan feeds its matmuls).
inline Vec round_bf16(const Vec& v) {
  Vec r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = bf16_to_f32(f32_to_bf16(v[i]));
  return r;
}
// The bf16 bits of each value (rounded to nearest even), as kernels that read bf16 take them.
inline std::vector<uint16_t> to_bf16_bits(const Vec& v) {
  std::vector<uint16_t> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = f32_to_bf16(v[i]);
  return r;
}

inline Vec conv2d_ref(const Vec& x, const Vec& w, const Vec* b, int64_t N, int64_t H, int64_t W,
                      int64_t Ci, int64_t Co, int64_t kh, int64_t kw, int stride, int pt, int pl,
                      int pb, int pr, int64_t& Ho, int64_t& Wo) {
  Ho = (H + pt + pb - kh) / stride + 1;
  Wo = (W + pl + pr - kw) / stride + 1;
  Vec y(size_t(N * Ho * Wo * Co));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oy = 0; oy < Ho; ++oy)
      for (int64_t ox = 0; ox < Wo; ++ox)
        for (int64_t co = 0; co < Co; ++co) {
          double acc = b ? (*b)[size_t(co)] : 0.0;
          for (int64_t ky = 0; ky < kh; ++ky)
            for (int64_t kx = 0; kx < kw; ++kx) {
              const int64_t iy = oy * stride - pt + ky, ix = ox * stride - pl + kx;
              if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
              for (int64_t ci = 0; ci < Ci; ++ci)
                acc += double(x[size_t(((n * H + iy) * W + ix) * Ci + ci)]) *
                       w[size_t(((co * Ci + ci) * kh + ky) * kw + kx)];
            }
          y[size_t(((n * Ho + oy) * Wo + ox) * Co + co)] = float(acc);
        }
  return y;
}

inline Vec linear_ref(const Vec& x, const Vec& w, const Vec* b, int64_t M, int64_t K, int64_t Nc) {
  Vec y(size_t(M * Nc));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < Nc; ++n) {
      double acc = b ? (*b)[size_t(n)] : 0.0;
      for (int64_t k = 0; k < K; ++k) acc += double(x[size_t(m * K + k)]) * w[size_t(n * K + k)];
      y[size_t(m * Nc + n)] = float(acc);
    }
  return y;
}

inline double gelu_ref(double x) {
  return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
}
inline double sigmoid_ref(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

inline Vec group_norm_ref(const Vec& x, const Vec& gamma, const Vec& beta, int64_t N, int64_t P,
                          int64_t C, int64_t G, double eps, bool silu) {
  Vec y(x.size());
  const int64_t cg = C / G;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < G; ++g) {
      double s = 0, q = 0;
      for (int64_t p = 0; p < P; ++p)
        for (int64_t c = g * cg; c < (g + 1) * cg; ++c) s += x[size_t((n * P + p) * C + c)];
      const double mean = s / double(P * cg);
      for (int64_t p = 0; p < P; ++p)
        for (int64_t c = g * cg; c < (g + 1) * cg; ++c) {
          const double d = x[size_t((n * P + p) * C + c)] - mean;
          q += d * d;
        }
      const double rstd = 1.0 / std::sqrt(q / double(P * cg) + eps);
      for (int64_t p = 0; p < P; ++p)
        for (int64_t c = g * cg; c < (g + 1) * cg; ++c) {
          const size_t i = size_t((n * P + p) * C + c);
          double v = (x[i] - mean) * rstd * gamma[size_t(c)] + beta[size_t(c)];
          if (silu) v = v * sigmoid_ref(v);
          y[i] = float(v);
        }
    }
  return y;
}

inline Vec layer_norm_ref(const Vec& x, const Vec& gamma, const Vec& beta, int64_t rows, int64_t C,
                          double eps) {
  Vec y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0, q = 0;
    for (int64_t c = 0; c < C; ++c) s += x[size_t(r * C + c)];
    const double mean = s / double(C);
    for (int64_t c = 0; c < C; ++c)
      q += (x[size_t(r * C + c)] - mean) * (x[size_t(r * C + c)] - mean);
    const double rstd = 1.0 / std::sqrt(q / double(C) + eps);
    for (int64_t c = 0; c < C; ++c)
      y[size_t(r * C + c)] =
          float((x[size_t(r * C + c)] - mean) * rstd * gamma[size_t(c)] + beta[size_t(c)]);
  }
  return y;
}

// softmax(q k^T / sqrt(d)) v per head; causal: key j > query i is masked.
inline Vec attention_ref(const Vec& q, const Vec& k, const Vec& v, int64_t N, int64_t Tq,
                         int64_t Tk, int64_t C, int64_t heads, bool causal) {
  Vec y(size_t(N * Tq * C));
  const int64_t d = C / heads;
  std::vector<double> s(static_cast<size_t>(Tk));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < Tq; ++i) {
        const int64_t len = causal ? std::min(Tk, i + 1) : Tk;
        double mx = -INFINITY;
        for (int64_t j = 0; j < len; ++j) {
          double acc = 0;
          for (int64_t e = 0; e < d; ++e)
            acc += double(q[size_t((n * Tq + i) * C + h * d + e)]) *
                   k[size_t((n * Tk + j) * C + h * d + e)];
          s[size_t(j)] = acc / std::sqrt(double(d));
          mx = std::max(mx, s[size_t(j)]);
        }
        double sum = 0;
        for (int64_t j = 0; j < len; ++j) sum += (s[size_t(j)] = std::exp(s[size_t(j)] - mx));
        for (int64_t e = 0; e < d; ++e) {
          double acc = 0;
          for (int64_t j = 0; j < len; ++j)
            acc += s[size_t(j)] * v[size_t((n * Tk + j) * C + h * d + e)];
          y[size_t((n * Tq + i) * C + h * d + e)] = float(acc / sum);
        }
      }
  return y;
}

inline int64_t nearest_src(int64_t dst, int64_t in, int64_t out) {
  if (in == out) return dst;
  if (out == 2 * in) return dst / 2;
  return std::min(int64_t(std::floor(float(dst) * (float(in) / float(out)))), in - 1);
}

inline Vec timestep_ref(const Vec& t, int64_t dim, bool flip, float shift) {
  const int64_t half = dim / 2;
  Vec y(size_t(int64_t(t.size()) * dim));
  for (size_t n = 0; n < t.size(); ++n)
    for (int64_t i = 0; i < half; ++i) {
      const float freq = std::exp(-std::log(10000.f) * float(i) / (float(half) - shift));
      const double arg = double(t[n] * freq);
      const float s = float(std::sin(arg)), c = float(std::cos(arg));
      y[n * size_t(dim) + size_t(flip ? half + i : i)] = s;
      y[n * size_t(dim) + size_t(flip ? i : half + i)] = c;
    }
  return y;
}

// Evaluates a whole graph with the references above, node by node (no fusion, no memory reuse):
// the oracle for planner tests. `inputs` by name; I32 inputs are passed as floats.
inline std::vector<Vec> reference_run(const graph::Graph& g,
                                      const std::vector<std::pair<std::string, Vec>>& inputs) {
  using graph::Op;
  std::vector<Vec> val(g.nodes().size());
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    const graph::Node& n = g.nodes()[i];
    auto in = [&](int k) -> const Vec& { return val[size_t(n.inputs[size_t(k)])]; };
    auto sh = [&](int k) -> const Shape& { return g.shape(n.inputs[size_t(k)]); };
    const int64_t numel = shape_numel(n.shape);
    Vec& y = val[i];
    switch (n.op) {
      case Op::Input:
        for (const auto& [name, v] : inputs)
          if (name == n.name) y = v;
        break;
      case Op::Weight:
        y = n.weight.to_f32();
        break;
      case Op::Reshape:
        y = in(0);
        break;
      case Op::Conv2d: {
        const Shape &xs = sh(0), &ws = sh(1);
        int64_t Ho, Wo;
        y = conv2d_ref(in(0), in(1), n.inputs[2] == graph::kNone ? nullptr : &in(2), xs[0], xs[1],
                       xs[2], xs[3], ws[0], ws[2], ws[3], n.attrs.stride, n.attrs.pad_top,
                       n.attrs.pad_left, n.attrs.pad_bottom, n.attrs.pad_right, Ho, Wo);
        break;
      }
      case Op::Linear: {
        const int64_t K = sh(1)[1], Nc = sh(1)[0];
        y = linear_ref(in(0), in(1), n.inputs[2] == graph::kNone ? nullptr : &in(2), numel / Nc, K,
                       Nc);
        break;
      }
      case Op::GroupNorm: {
        const int64_t N = n.shape[0], C = n.shape.back();
        y = group_norm_ref(in(0), in(1), in(2), N, numel / (N * C), C, n.attrs.groups, n.attrs.eps,
                           n.attrs.silu);
        break;
      }
      case Op::LayerNorm:
        y = layer_norm_ref(in(0), in(1), in(2), numel / n.shape.back(), n.shape.back(),
                           n.attrs.eps);
        break;
      case Op::Attention:
        y = attention_ref(in(0), in(1), in(2), sh(0)[0], sh(0)[1], sh(1)[1], sh(0)[2],
                          n.attrs.heads, n.attrs.causal);
        break;
      case Op::Gelu:
      case Op::QuickGelu:
      case Op::Silu:
      case Op::Relu:
      case Op::Tanh:
      case Op::Scale:
        y.resize(size_t(numel));
        for (size_t j = 0; j < y.size(); ++j) {
          const double x = in(0)[j];
          y[j] = float(n.op == Op::Gelu        ? gelu_ref(x)
                       : n.op == Op::QuickGelu ? x * sigmoid_ref(1.702 * x)
                       : n.op == Op::Silu      ? x * sigmoid_ref(x)
                       : n.op == Op::Relu      ? std::max(x, 0.0)
                       : n.op == Op::Tanh      ? std::tanh(x)
                                               : x * n.attrs.scale + n.attrs.bias);
        }
        break;
      case Op::Geglu: {
        const int64_t D = n.shape.back();
        y.resize(size_t(numel));
        for (int64_t r = 0; r < numel / D; ++r)
          for (int64_t j = 0; j < D; ++j)
            y[size_t(r * D + j)] =
                float(in(0)[size_t(r * 2 * D + j)] * gelu_ref(in(0)[size_t(r * 2 * D + D + j)]));
        break;
      }
      case Op::Add:
      case Op::Mul: {
        const Shape &a = sh(0), &b = sh(1);
        const int64_t C = a.back(), per_n = a.size() >= 2 ? numel / a[0] : numel;
        y.resize(size_t(numel));
        for (int64_t j = 0; j < numel; ++j) {
          const float bv = a == b          ? in(1)[size_t(j)]
                           : b == Shape{1} ? in(1)[0]
                                           : in(1)[size_t((j / per_n) * C + j % C)];
          y[size_t(j)] = n.op == Op::Add ? in(0)[size_t(j)] + bv : in(0)[size_t(j)] * bv;
        }
        break;
      }
      case Op::UpsampleNearest: {
        const Shape& xs = sh(0);
        const int64_t Ho = n.shape[1], Wo = n.shape[2], C = xs[3];
        y.resize(size_t(numel));
        for (int64_t b = 0; b < xs[0]; ++b)
          for (int64_t oy = 0; oy < Ho; ++oy)
            for (int64_t ox = 0; ox < Wo; ++ox)
              for (int64_t c = 0; c < C; ++c)
                y[size_t(((b * Ho + oy) * Wo + ox) * C + c)] =
                    in(0)[size_t(((b * xs[1] + nearest_src(oy, xs[1], Ho)) * xs[2] +
                                  nearest_src(ox, xs[2], Wo)) *
                                     C +
                                 c)];
        break;
      }
      case Op::Concat: {
        const int64_t Ca = sh(0).back(), Cb = sh(1).back(), rows = numel / (Ca + Cb);
        for (int64_t r = 0; r < rows; ++r) {
          y.insert(y.end(), in(0).begin() + r * Ca, in(0).begin() + (r + 1) * Ca);
          y.insert(y.end(), in(1).begin() + r * Cb, in(1).begin() + (r + 1) * Cb);
        }
        break;
      }
      case Op::Slice: {
        const int64_t C = sh(0).back(), rows = numel / n.shape.back();
        for (int64_t r = 0; r < rows; ++r)
          y.insert(y.end(), in(0).begin() + r * C + n.attrs.begin,
                   in(0).begin() + r * C + n.attrs.end);
        break;
      }
      case Op::TimestepEmbedding:
        y = timestep_ref(in(0), n.attrs.dim, n.attrs.flip_sin_to_cos, n.attrs.freq_shift);
        break;
      case Op::Embedding: {
        const int64_t C = sh(1)[1];
        for (float id : in(0))
          y.insert(y.end(), in(1).begin() + int64_t(id) * C, in(1).begin() + (int64_t(id) + 1) * C);
        break;
      }
    }
  }
  std::vector<Vec> outs;
  for (const auto& [name, v] : g.outputs()) outs.push_back(val[size_t(v)]);
  return outs;
}

// A weight node holding `values`, stored as `dtype`.
inline graph::ValueId add_weight(graph::Graph& g, const std::string& name, const Vec& values,
                                 Shape shape, DType dtype = DType::F32) {
  return g.weight(name, TensorRef::from_f32(values, std::move(shape), dtype, "test"));
}

// Skips a test of a precision Plan::compile refuses on this CPU (cpu::precision_available): bf16
// and int8 on an AVX2-only CPU (IsaCap tests the refusal itself).
#define SDC_SKIP_UNLESS_PRECISION_RUNS(p)                                  \
  do {                                                                     \
    if (!cpu::precision_available(p))                                      \
      GTEST_SKIP() << cpu::precision_name(p) << " is refused on this CPU"; \
  } while (0)

// An f32 tensor of plain (row-major) layout reordered into `md` (a kernel's packed layout, as
// the Winograd products read it).
inline std::vector<uint8_t> packed_as(const TensorRef& t, const dnnl::memory::desc& md) {
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  std::vector<uint8_t> out(md.get_size());
  dnnl::memory::dims dims(t.shape.begin(), t.shape.end()), strides(dims.size(), 1);
  for (size_t i = dims.size() - 1; i > 0; --i) strides[i - 1] = strides[i] * dims[i];
  dnnl::memory src({dims, dnnl::memory::data_type::f32, strides}, engine,
                   const_cast<void*>(t.data));
  dnnl::memory dst(md, engine, out.data());
  dnnl::stream s(engine);
  dnnl::reorder(src, dst).execute(s, src, dst);
  s.wait();
  return out;
}

inline void fill_input(cpu::Plan& p, const std::string& name, const Vec& v) {
  std::copy(v.begin(), v.end(), p.input_f32(name));
}

// The plan's step kinds in run order, each followed by a space ("Convert Conv2d.wino ").
inline std::string step_kinds(const cpu::Plan& p) {
  std::string k;
  for (const auto& s : p.steps()) k += s.kind + " ";
  return k;
}

}  // namespace sdc::test
