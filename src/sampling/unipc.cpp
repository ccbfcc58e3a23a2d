// UniPC (bh1, order 3, multistep) as A1111 runs it; see unipc.h.

#include "common/strict_float.h"  // first: PyTorch rounding, no fused multiply-add

#include "sampling/unipc.h"

#include <cmath>
#include <string>

#include "common/error.h"
#include "sampling/compvis_schedule.h"
#include "sampling/torch_float.h"

namespace sdc::sampling {
namespace {

using Vec = std::vector<float>;
constexpr int kOrder = 3;
constexpr int kTotalN = 1000;

// NoiseScheduleVP('discrete', alphas_cumprod): t_n = linspace(0, 1, 1001)[1:], log_alpha_n =
// 0.5 * log(alphas_cumprod[n]).
struct VpSchedule {
  std::vector<float> t, log_alpha;
  VpSchedule() {
    t = torch_linspace_f32(0.0f, 1.0f, kTotalN + 1);
    t.erase(t.begin());
    log_alpha = CompVisSchedule::sd15().alphas_cumprod();
    torch_log_f32(log_alpha);
    for (float& v : log_alpha) v = 0.5f * v;
  }
  // interpolate_fn: piecewise linear through the keypoints, extended linearly at both ends.
  float log_mean_coeff(float x) const {
    const int k = int(t.size());
    int j = 0;  // keys[j] <= x < keys[j + 1], clamped to [0, k - 2]
    while (j < k - 2 && t[size_t(j + 1)] <= x) ++j;
    const float sx = t[size_t(j)], ex = t[size_t(j + 1)];
    const float sy = log_alpha[size_t(j)], ey = log_alpha[size_t(j + 1)];
    return sy + (x - sx) * (ey - sy) / (ex - sx);
  }
  float alpha(float x) const { return t_exp(log_mean_coeff(x)); }
  float std_dev(float x) const { return std::sqrt(1.0f - t_exp(2.0f * log_mean_coeff(x))); }
  float lambda(float x) const {
    const float lmc = log_mean_coeff(x);
    const float log_std = 0.5f * t_log(1.0f - t_exp(2.0f * lmc));
    return lmc - log_std;
  }
};

const VpSchedule& vp() {
  static const VpSchedule s;
  return s;
}

// torch.linalg.solve on a small float32 system: LU with partial pivoting (LAPACK getf2: the
// column scaled by the pivot's reciprocal), then the two triangular solves.
std::vector<float> solve(std::vector<std::vector<float>> a, std::vector<float> b) {
  const size_t n = b.size();
  std::vector<size_t> piv(n);
  for (size_t j = 0; j < n; ++j) {
    size_t p = j;
    for (size_t i = j + 1; i < n; ++i)
      if (std::fabs(a[i][j]) > std::fabs(a[p][j])) p = i;
    piv[j] = p;
    if (a[p][j] == 0.0f) throw Error("", "UniPC", "a non-singular coefficient system", "singular");
    std::swap(a[p], a[j]);
    const float inv = 1.0f / a[j][j];
    for (size_t i = j + 1; i < n; ++i) a[i][j] = a[i][j] * inv;
    for (size_t i = j + 1; i < n; ++i)
      for (size_t k = j + 1; k < n; ++k) a[i][k] = a[i][k] - a[i][j] * a[j][k];
  }
  for (size_t j = 0; j < n; ++j) std::swap(b[j], b[piv[j]]);
  for (size_t i = 0; i < n; ++i)
    for (size_t k = 0; k < i; ++k) b[i] = b[i] - a[i][k] * b[k];
  for (size_t i = n; i-- > 0;) {
    for (size_t k = i + 1; k < n; ++k) b[i] = b[i] - a[i][k] * b[k];
    b[i] = b[i] / a[i][i];
  }
  return b;
}

class UniPc {
 public:
  explicit UniPc(const TimestepSamplerContext& ctx) : ctx_(ctx) {}

  // data_prediction_fn: x0 = (x - sigma_t eps) / alpha_t, eps at model time (t - 1/N) * 1000.
  Vec model_x0(const Vec& x, float t) const {
    const float t_input = (t - static_cast<float>(1.0 / kTotalN)) * 1000.0f;
    Vec eps(x.size());
    ctx_.eps(x, t_input, eps, {});
    const float a = vp().alpha(t), s = vp().std_dev(t);
    Vec x0(x.size());
    for (size_t k = 0; k < x.size(); ++k) x0[k] = (x[k] - s * eps[k]) / a;
    return x0;
  }

  // multistep_uni_pc_bh_update (bh1, predict_x0); returns x_t and the model value at it
  // (empty without corrector).
  std::pair<Vec, Vec> update(const Vec& x, const std::vector<Vec>& models,
                             const std::vector<float>& times, float t, int order,
                             bool use_corrector) const {
    const VpSchedule& ns = vp();
    const float t_prev_0 = times.back();
    const Vec& model_prev_0 = models.back();
    const float lambda_prev_0 = ns.lambda(t_prev_0), lambda_t = ns.lambda(t);
    const float sigma_prev_0 = ns.std_dev(t_prev_0), sigma_t = ns.std_dev(t);
    const float alpha_t = t_exp(ns.log_mean_coeff(t));
    const float h = lambda_t - lambda_prev_0;

    std::vector<float> rks;
    std::vector<Vec> d1s;
    for (int i = 1; i < order; ++i) {
      const float t_prev_i = times[times.size() - 1 - size_t(i)];
      const Vec& model_prev_i = models[models.size() - 1 - size_t(i)];
      const float rk = (ns.lambda(t_prev_i) - lambda_prev_0) / h;
      rks.push_back(rk);
      Vec d(x.size());
      for (size_t k = 0; k < x.size(); ++k) d[k] = (model_prev_i[k] - model_prev_0[k]) / rk;
      d1s.push_back(std::move(d));
    }
    rks.push_back(1.0f);

    const float hh = -h;
    const float h_phi_1 = t_expm1(hh);
    float h_phi_k = h_phi_1 / hh - 1.0f;
    double factorial = 1.0;
    const float b_h = hh;  // bh1
    std::vector<std::vector<float>> r_mat;
    std::vector<float> b;
    for (int i = 1; i <= order; ++i) {
      std::vector<float> row;
      for (float rk : rks)  // rks ** (i - 1)
        row.push_back(i == 1 ? 1.0f : (i == 2 ? rk : rk * rk));
      r_mat.push_back(row);
      b.push_back(h_phi_k * static_cast<float>(factorial) / b_h);
      factorial *= (i + 1);
      h_phi_k = h_phi_k / hh - static_cast<float>(1.0 / factorial);
    }

    std::vector<float> rhos_p;
    if (!d1s.empty()) {
      if (order == 2) {
        rhos_p = {0.5f};
      } else {
        std::vector<std::vector<float>> r_sub(size_t(order - 1));
        for (int i = 0; i < order - 1; ++i)
          r_sub[size_t(i)].assign(r_mat[size_t(i)].begin(), r_mat[size_t(i)].end() - 1);
        rhos_p = solve(r_sub, std::vector<float>(b.begin(), b.end() - 1));
      }
    }
    std::vector<float> rhos_c;
    if (use_corrector) rhos_c = order == 1 ? std::vector<float>{0.5f} : solve(r_mat, b);

    const float c_x = sigma_t / sigma_prev_0, c_m = alpha_t * h_phi_1, c_b = alpha_t * b_h;
    Vec x_t_(x.size());
    for (size_t k = 0; k < x.size(); ++k) x_t_[k] = c_x * x[k] - c_m * model_prev_0[k];
    Vec x_t(x.size());
    for (size_t k = 0; k < x.size(); ++k) {
      float pred = 0.0f;
      for (size_t j = 0; j < d1s.size(); ++j) pred = pred + rhos_p[j] * d1s[j][k];
      x_t[k] = x_t_[k] - c_b * pred;
    }
    Vec model_t;
    if (use_corrector) {
      model_t = model_x0(x_t, t);
      const float rho_last = rhos_c.back();
      for (size_t k = 0; k < x.size(); ++k) {
        float corr = 0.0f;
        for (size_t j = 0; j < d1s.size(); ++j) corr = corr + rhos_c[j] * d1s[j][k];
        const float d1_t = model_t[k] - model_prev_0[k];
        x_t[k] = x_t_[k] - c_b * (corr + rho_last * d1_t);
      }
    }
    return {std::move(x_t), std::move(model_t)};
  }

 private:
  const TimestepSamplerContext& ctx_;
};

}  // namespace

std::vector<float> unipc_time_grid(int steps, std::optional<float> t_start) {
  const float t_0 = static_cast<float>(1.0 / kTotalN);
  return torch_linspace_f32(t_start.value_or(1.0f), t_0, steps + 1);
}

std::vector<float> run_unipc(std::vector<float> x, int steps, std::optional<float> t_start,
                             const TimestepSamplerContext& ctx) {
  if (steps < kOrder)
    throw UsageError("", "--steps", "at least 3 UniPC steps (its order)", std::to_string(steps));
  const std::vector<float> ts = unipc_time_grid(steps, t_start);
  const UniPc solver(ctx);
  std::vector<Vec> models = {solver.model_x0(x, ts[0])};
  std::vector<float> times = {ts[0]};
  int step_index = 0;
  auto after_update = [&](const Vec& model_x) {
    if (ctx.on_step) ctx.on_step(step_index, model_x.empty() ? x : model_x);
    ++step_index;
  };
  for (int init_order = 1; init_order < kOrder; ++init_order) {
    auto [next, model_x] =
        solver.update(x, models, times, ts[size_t(init_order)], init_order, true);
    x = std::move(next);
    after_update(model_x);
    models.push_back(std::move(model_x));
    times.push_back(ts[size_t(init_order)]);
  }
  for (int step = kOrder; step <= steps; ++step) {
    const int order = std::min(kOrder, steps + 1 - step);
    const bool corrector = step != steps;
    auto [next, model_x] = solver.update(x, models, times, ts[size_t(step)], order, corrector);
    x = std::move(next);
    after_update(model_x);
    for (int i = 0; i < kOrder - 1; ++i) {
      times[size_t(i)] = times[size_t(i + 1)];
      models[size_t(i)] = std::move(models[size_t(i + 1)]);
    }
    times.back() = ts[size_t(step)];
    if (step < steps) models.back() = std::move(model_x);
  }
  return x;
}

}  // namespace sdc::sampling
