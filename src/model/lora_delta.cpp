// Dense deltas of LoRA / LoCon / LoHa / LoKr modules in f32.
#include "model/lora_delta.h"

#include "common/error.h"

namespace sdc::model {
namespace {

int64_t tail_numel(const Shape& s, size_t from) {
  int64_t n = 1;
  for (size_t i = from; i < s.size(); ++i) n *= s[i];
  return n;
}

std::optional<std::pair<int64_t, int64_t>> kernel_of(const Shape& s) {
  if (s.size() == 4) return std::make_pair(s[2], s[3]);
  return std::nullopt;
}

// A row-major f32 matrix.
struct Mat {
  int64_t rows = 0, cols = 0;
  std::vector<float> v;
  float* row(int64_t i) { return v.data() + i * cols; }
  const float* row(int64_t i) const { return v.data() + i * cols; }
};

// A part read as a [dim0, rest] matrix.
Mat as_matrix(const TensorRef& t) {
  Mat m;
  m.rows = t.shape.empty() ? 1 : t.shape[0];
  m.cols = tail_numel(t.shape, 1);
  m.v = t.to_f32();
  return m;
}

Mat transpose(const Mat& a) {
  Mat t{a.cols, a.rows, std::vector<float>(a.v.size())};
  for (int64_t i = 0; i < a.rows; ++i)
    for (int64_t j = 0; j < a.cols; ++j) t.v[size_t(j * a.rows + i)] = a.v[size_t(i * a.cols + j)];
  return t;
}

// a [M, R] @ b [R, N]; the inner loop runs over contiguous rows of b (vectorises).
Mat matmul(const Mat& a, const Mat& b) {
  Mat c{a.rows, b.cols, std::vector<float>(size_t(a.rows * b.cols), 0.0f)};
  for (int64_t i = 0; i < a.rows; ++i) {
    float* ci = c.row(i);
    for (int64_t r = 0; r < a.cols; ++r) {
      const float air = a.row(i)[r];
      const float* br = b.row(r);
      for (int64_t j = 0; j < b.cols; ++j) ci[j] += air * br[j];
    }
  }
  return c;
}

// Tucker / CP rebuild: out[p, q·S + s] = Σ_ij t[i, j, s] · wa[i, p] · wb[j, q], with t
// [r1, r2, kh, kw], wa [r1, Co], wb [r2, Ci] (S = kh·kw). Returns [Co, Ci·S].
Mat rebuild_tucker(const TensorRef& t, const TensorRef& wa, const TensorRef& wb) {
  const int64_t r1 = t.shape[0], r2 = t.shape[1], S = t.shape[2] * t.shape[3];
  const Mat tm = as_matrix(t);  // [r1, r2·S]
  const Mat b = as_matrix(wb);  // [r2, Ci]
  const int64_t ci = b.cols;
  // u[i, q·S + s] = Σ_j t[i, j, s] · wb[j, q]
  Mat u{r1, ci * S, std::vector<float>(size_t(r1 * ci * S), 0.0f)};
  for (int64_t i = 0; i < r1; ++i)
    for (int64_t j = 0; j < r2; ++j) {
      const float* tij = tm.row(i) + j * S;
      for (int64_t q = 0; q < ci; ++q) {
        const float bjq = b.row(j)[q];
        float* uq = u.row(i) + q * S;
        for (int64_t s = 0; s < S; ++s) uq[s] += tij[s] * bjq;
      }
    }
  return matmul(transpose(as_matrix(wa)), u);  // [Co, r1] @ [r1, Ci·S]
}

// LoCon CP: out[i, j·S + s] = Σ_nm mid[n, m, s] · up[i, n] · down[m, j].
Mat rebuild_cp(const TensorRef& up, const TensorRef& down, const TensorRef& mid) {
  const Mat d = as_matrix(down);  // [r_down, Ci]
  const int64_t rn = mid.shape[0], rm = mid.shape[1], S = mid.shape[2] * mid.shape[3];
  const Mat md = as_matrix(mid);  // [r_up, r_down·S]
  const int64_t ci = d.cols;
  Mat t{rn, ci * S, std::vector<float>(size_t(rn * ci * S), 0.0f)};
  for (int64_t n = 0; n < rn; ++n)
    for (int64_t m = 0; m < rm; ++m) {
      const float* mnm = md.row(n) + m * S;
      for (int64_t j = 0; j < ci; ++j) {
        const float dmj = d.row(m)[j];
        float* tj = t.row(n) + j * S;
        for (int64_t s = 0; s < S; ++s) tj[s] += mnm[s] * dmj;
      }
    }
  return matmul(as_matrix(up), t);
}

Mat loha_factor(const LoraModule& m, const char* a, const char* b, const char* t) {
  if (const TensorRef* core = m.part(t)) return rebuild_tucker(*core, *m.part(a), *m.part(b));
  return matmul(as_matrix(*m.part(a)), as_matrix(*m.part(b)));
}

Mat lokr_w1(const LoraModule& m) {
  if (const TensorRef* w = m.part("lokr_w1")) return as_matrix(*w);
  return matmul(as_matrix(*m.part("lokr_w1_a")), as_matrix(*m.part("lokr_w1_b")));
}

Mat lokr_w2(const LoraModule& m) {
  if (const TensorRef* w = m.part("lokr_w2")) return as_matrix(*w);
  if (const TensorRef* t = m.part("lokr_t2"))
    return rebuild_tucker(*t, *m.part("lokr_w2_a"), *m.part("lokr_w2_b"));
  return matmul(as_matrix(*m.part("lokr_w2_a")), as_matrix(*m.part("lokr_w2_b")));
}

// kron(w1 [a, b], w2 [c, D]) = [a·c, b·D]; equals torch.kron(w1[..., None, None], w2) reshaped
// when w2 is a [c, d, kh, kw] conv factor (D = d·kh·kw).
Mat kron(const Mat& w1, const Mat& w2) {
  Mat out{w1.rows * w2.rows, w1.cols * w2.cols, {}};
  out.v.resize(size_t(out.rows * out.cols));
  for (int64_t i = 0; i < w1.rows; ++i)
    for (int64_t m = 0; m < w2.rows; ++m) {
      float* o = out.row(i * w2.rows + m);
      for (int64_t j = 0; j < w1.cols; ++j) {
        const float x = w1.row(i)[j];
        const float* w2m = w2.row(m);
        for (int64_t n = 0; n < w2.cols; ++n) o[j * w2.cols + n] = x * w2m[n];
      }
    }
  return out;
}

}  // namespace

std::string LoraDeltaShape::str() const {
  if (kernel && kernel->first * kernel->second > 0 && in % (kernel->first * kernel->second) == 0)
    return shape_str({out, in / (kernel->first * kernel->second), kernel->first, kernel->second});
  return shape_str({out, in});
}

bool LoraDeltaShape::fits(const Shape& target) const {
  if (target.size() != 2 && target.size() != 4) return false;
  if (target[0] != out || tail_numel(target, 1) != in) return false;
  if (!kernel) return true;
  const std::pair<int64_t, int64_t> tk = target.size() == 4
                                             ? std::make_pair(target[2], target[3])
                                             : std::make_pair(int64_t(1), int64_t(1));
  return *kernel == tk;
}

LoraDeltaShape lora_delta_shape(const LoraModule& m) {
  LoraDeltaShape s;
  s.out = m.out_features();
  s.in = m.in_features();
  switch (m.kind) {
    case LoraKind::LoRA:
      s.kernel = m.has("lora_mid") ? kernel_of(m.part("lora_mid")->shape)
                                   : kernel_of(m.part("lora_down")->shape);
      break;
    case LoraKind::LoHa:
      s.kernel = m.has("hada_t1") ? kernel_of(m.part("hada_t1")->shape)
                                  : kernel_of(m.part("hada_w1_b")->shape);
      break;
    case LoraKind::LoKr:
      if (m.has("lokr_w2")) s.kernel = kernel_of(m.part("lokr_w2")->shape);
      if (m.has("lokr_t2")) s.kernel = kernel_of(m.part("lokr_t2")->shape);
      if (m.has("lokr_w2_b") && !m.has("lokr_t2")) s.kernel = kernel_of(m.part("lokr_w2_b")->shape);
      break;
  }
  return s;
}

void check_lora_fits(const LoraModule& m, const Shape& target, const std::string& weight_name,
                     const std::string& file) {
  const LoraDeltaShape s = lora_delta_shape(m);
  if (s.fits(target)) {
    // A per-input DoRA magnitude needs one value per input channel of this weight.
    const TensorRef* mag = m.part("dora_scale");
    if (m.dora == DoraAxis::Input && mag->numel() != target[1])
      throw Error(
          file, m.part_keys.at("dora_scale"),
          std::to_string(target[1]) + " magnitudes (one per input channel of " + weight_name + ")",
          "shape " + shape_str(mag->shape));
    return;
  }
  std::string parts;
  for (const auto& [role, t] : m.parts)
    if (role != "alpha" && role != "dora_scale")
      parts += (parts.empty() ? "" : ", ") + role + " " + shape_str(t.shape);
  throw Error(file, m.first_key(), "a delta of shape " + shape_str(target) + " for " + weight_name,
              s.str() + " (" + parts + ")");
}

std::vector<float> lora_delta(const LoraModule& m) {
  Mat d;
  switch (m.kind) {
    case LoraKind::LoRA:
      d = m.has("lora_mid")
              ? rebuild_cp(*m.part("lora_up"), *m.part("lora_down"), *m.part("lora_mid"))
              : matmul(as_matrix(*m.part("lora_up")), as_matrix(*m.part("lora_down")));
      break;
    case LoraKind::LoHa: {
      d = loha_factor(m, "hada_w1_a", "hada_w1_b", "hada_t1");
      const Mat d2 = loha_factor(m, "hada_w2_a", "hada_w2_b", "hada_t2");
      if (d2.rows != d.rows || d2.cols != d.cols)
        throw Error("", m.name, "hada_w1 and hada_w2 products of the same shape",
                    shape_str({d.rows, d.cols}) + " and " + shape_str({d2.rows, d2.cols}));
      for (size_t i = 0; i < d.v.size(); ++i) d.v[i] *= d2.v[i];
      break;
    }
    case LoraKind::LoKr:
      d = kron(lokr_w1(m), lokr_w2(m));
      break;
  }
  const float k = m.alpha_scale();
  if (k != 1.0f)
    for (float& x : d.v) x *= k;
  return std::move(d.v);
}

}  // namespace sdc::model
