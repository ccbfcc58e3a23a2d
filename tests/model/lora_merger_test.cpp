// Merging synthetic LoRAs of every kind into a miniature model, each checked against a direct,
// index-by-index evaluation of the formula; and every refusal (unmatched keys, shapes, SDXL/SD2,
// two modules on one weight) with its message.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "common/error.h"
#include "common/fixtures.h"
#include "io/safetensors.h"
#include "model/lora_merger.h"

namespace sdc::model {
namespace {

// A miniature model: one weight of each shape class, under LDM names.
const std::string kQ =
    "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight";
const std::string kK2 =
    "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight";
const std::string kProjIn = "model.diffusion_model.input_blocks.1.1.proj_in.weight";
const std::string kConv = "model.diffusion_model.input_blocks.1.0.in_layers.2.weight";
const std::string kTeQ =
    "cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight";
const std::string kBias = "model.diffusion_model.input_blocks.1.1.proj_in.bias";
const std::string kVae = "first_stage_model.decoder.conv_in.weight";

// Deterministic values in [-1, 1).
std::vector<float> random_values(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  uint32_t s = seed * 2654435761u + 12345u;
  for (float& x : v) {
    s = s * 1664525u + 1013904223u;
    x = float(s >> 8) / float(1u << 23) - 1.0f;
  }
  return v;
}

struct Model {
  WeightMap weights;
  std::map<std::string, std::vector<float>> values;  // f32 copies for the references
};

Model mini_model(DType dtype = DType::F32, bool text_encoder = true) {
  Model m;
  const std::vector<std::pair<std::string, Shape>> shapes = {
      {kQ, {8, 8}},   {kK2, {8, 6}}, {kProjIn, {8, 8, 1, 1}}, {kConv, {8, 4, 3, 3}},
      {kTeQ, {6, 6}}, {kBias, {8}},  {kVae, {4, 4, 3, 3}},
  };
  uint32_t seed = 100;
  for (const auto& [name, shape] : shapes) {
    if (!text_encoder && name == kTeQ) continue;
    std::vector<float> v = random_values(size_t(shape_numel(shape)), seed++);
    TensorRef t = TensorRef::from_f32(v, shape, dtype, "mini.safetensors");
    m.values[name] = t.to_f32();  // what the model holds after rounding to `dtype`
    m.weights.set(name, t);
  }
  m.weights.description = "mini model";
  return m;
}

// A LoRA under construction: tensors to write and their f32 values.
struct Lora {
  WeightMap tensors;
  std::map<std::string, std::vector<float>> v;
  std::vector<float>& add(const std::string& name, Shape shape, uint32_t seed) {
    std::vector<float> vals = random_values(size_t(shape_numel(shape)), seed);
    tensors.set(name, TensorRef::from_f32(vals, std::move(shape), DType::F32));
    return v[name] = vals;
  }
  void alpha(const std::string& module, float a) {
    tensors.set(module + ".alpha", TensorRef::from_f32({a}, {}, DType::F32));
  }
  LoraFile write(const test::TempDir& dir, const std::string& name = "l.safetensors") const {
    io::write_safetensors(dir.file(name), tensors);
    return load_lora(dir.file(name));
  }
};

// up [Co, r] @ down [r, K], index by index.
std::vector<float> ref_matmul(const std::vector<float>& a, const std::vector<float>& b, int64_t m,
                              int64_t r, int64_t n) {
  std::vector<float> c(size_t(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t k = 0; k < r; ++k) s += double(a[size_t(i * r + k)]) * b[size_t(k * n + j)];
      c[size_t(i * n + j)] = float(s);
    }
  return c;
}

// t [r1, r2, S], wa [r1, Co], wb [r2, Ci] -> [Co, Ci, S]
std::vector<float> ref_tucker(const std::vector<float>& t, const std::vector<float>& wa,
                              const std::vector<float>& wb, int64_t r1, int64_t r2, int64_t S,
                              int64_t co, int64_t ci) {
  std::vector<float> out(size_t(co * ci * S));
  for (int64_t p = 0; p < co; ++p)
    for (int64_t q = 0; q < ci; ++q)
      for (int64_t s = 0; s < S; ++s) {
        double acc = 0;
        for (int64_t i = 0; i < r1; ++i)
          for (int64_t j = 0; j < r2; ++j)
            acc += double(t[size_t((i * r2 + j) * S + s)]) * wa[size_t(i * co + p)] *
                   wb[size_t(j * ci + q)];
        out[size_t((p * ci + q) * S + s)] = float(acc);
      }
  return out;
}

std::vector<float> plus(const std::vector<float>& w, const std::vector<float>& d, double k) {
  std::vector<float> out(w.size());
  for (size_t i = 0; i < w.size(); ++i) out[i] = float(w[i] + k * d[i]);
  return out;
}

void expect_close(const TensorRef& got, const std::vector<float>& want, double tol = 1e-6) {
  ASSERT_EQ(got.dtype, DType::F32);
  ASSERT_EQ(size_t(got.numel()), want.size());
  const std::vector<float> g = got.to_f32();
  double max_ref = 0, max_diff = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    max_ref = std::max(max_ref, double(std::fabs(want[i])));
    max_diff = std::max(max_diff, double(std::fabs(g[i] - want[i])));
  }
  EXPECT_LE(max_diff / max_ref, tol);
}

LoraReport merge(Model& m, const LoraFile& f, float scale, bool ignore_unmatched = false) {
  const LoraTargets targets(m.weights);
  return merge_lora(m.weights, targets, f, scale, ignore_unmatched);
}

std::string merge_error(Model& m, const LoraFile& f, float scale = 1.0f) {
  try {
    merge(m, f, scale);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(LoraMerge, KohyaLdmPathLinearWithAlpha) {
  test::TempDir dir;
  Model m = mini_model();
  const void* untouched = m.weights.get(kConv).data;
  Lora l;
  const std::string mod = "lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q";
  auto& down = l.add(mod + ".lora_down.weight", {2, 8}, 1);
  auto& up = l.add(mod + ".lora_up.weight", {8, 2}, 2);
  l.alpha(mod, 1.0f);
  const LoraReport r = merge(m, l.write(dir), 0.7f);
  expect_close(m.weights.get(kQ), plus(m.values[kQ], ref_matmul(up, down, 8, 2, 8), 0.7 * 0.5));
  EXPECT_EQ(m.weights.get(kQ).shape, (Shape{8, 8}));
  EXPECT_EQ(m.weights.get(kConv).data, untouched);  // untouched weights stay views
  EXPECT_EQ(r.unet_modules, 1);
  EXPECT_EQ(r.text_encoder_modules, 0);
  EXPECT_EQ(r.ranks, (std::set<int64_t>{2}));
  EXPECT_EQ(r.format, "kohya LoRA");
  EXPECT_EQ(r.summary(), "l.safetensors: 1 UNet modules, 0 text-encoder modules");
}

TEST(LoraMerge, KohyaConvsAndLinearsAcrossShapes) {
  test::TempDir dir;
  Model m = mini_model();
  Lora l;
  // 3x3 conv: down [r, Ci, 3, 3], up [Co, r, 1, 1].
  const std::string conv = "lora_unet_down_blocks_0_resnets_0_conv1";
  auto& cd = l.add(conv + ".lora_down.weight", {2, 4, 3, 3}, 3);
  auto& cu = l.add(conv + ".lora_up.weight", {8, 2, 1, 1}, 4);
  l.alpha(conv, 2.0f);
  // A Linear-shaped LoRA on a 1x1 conv weight.
  const std::string proj = "lora_unet_down_blocks_0_attentions_0_proj_in";
  auto& pd = l.add(proj + ".lora_down.weight", {2, 8}, 5);
  auto& pu = l.add(proj + ".lora_up.weight", {8, 2}, 6);
  l.alpha(proj, 1.0f);
  // A 1x1-conv-shaped LoRA on a Linear weight, without alpha (alpha = rank).
  const std::string te = "lora_te_text_model_encoder_layers_0_self_attn_q_proj";
  auto& td = l.add(te + ".lora_down.weight", {3, 6, 1, 1}, 7);
  auto& tu = l.add(te + ".lora_up.weight", {6, 3, 1, 1}, 8);
  const LoraReport r = merge(m, l.write(dir), 1.0f);
  expect_close(m.weights.get(kConv), plus(m.values[kConv], ref_matmul(cu, cd, 8, 2, 36), 1.0));
  expect_close(m.weights.get(kProjIn), plus(m.values[kProjIn], ref_matmul(pu, pd, 8, 2, 8), 0.5));
  expect_close(m.weights.get(kTeQ), plus(m.values[kTeQ], ref_matmul(tu, td, 6, 3, 6), 1.0));
  EXPECT_EQ(m.weights.get(kProjIn).shape, (Shape{8, 8, 1, 1}));
  EXPECT_EQ(r.unet_modules, 2);
  EXPECT_EQ(r.text_encoder_modules, 1);
  EXPECT_EQ(r.ranks, (std::set<int64_t>{2, 3}));
}

TEST(LoraMerge, HalfPrecisionWeightsMergeInF32) {
  test::TempDir dir;
  Model m = mini_model(DType::F16);
  Lora l;
  const std::string mod = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q";
  auto& down = l.add(mod + ".lora_down.weight", {2, 8}, 1);
  auto& up = l.add(mod + ".lora_up.weight", {8, 2}, 2);
  merge(m, l.write(dir), 1.0f);
  expect_close(m.weights.get(kQ), plus(m.values[kQ], ref_matmul(up, down, 8, 2, 8), 1.0));
  EXPECT_EQ(m.weights.get(kConv).dtype, DType::F16);
}

TEST(LoraMerge, LoconMid) {
  test::TempDir dir;
  Model m = mini_model();
  Lora l;
  const std::string mod = "lora_unet_down_blocks_0_resnets_0_conv1";
  auto& down = l.add(mod + ".lora_down.weight", {2, 4, 1, 1}, 1);
  auto& mid = l.add(mod + ".lora_mid.weight", {3, 2, 3, 3}, 2);
  auto& up = l.add(mod + ".lora_up.weight", {8, 3, 1, 1}, 3);
  l.alpha(mod, 1.0f);  // rank 2 (lora_down): factor 0.5
  merge(m, l.write(dir), 0.8f);
  std::vector<float> d(8 * 4 * 9);
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 4; ++j)
      for (int s = 0; s < 9; ++s) {
        double acc = 0;
        for (int n = 0; n < 3; ++n)
          for (int k = 0; k < 2; ++k)
            acc += double(mid[size_t((n * 2 + k) * 9 + s)]) * up[size_t(i * 3 + n)] *
                   down[size_t(k * 4 + j)];
        d[size_t((i * 4 + j) * 9 + s)] = float(acc);
      }
  expect_close(m.weights.get(kConv), plus(m.values[kConv], d, 0.8 * 0.5));
}

TEST(LoraMerge, Loha) {
  test::TempDir dir;
  Model m = mini_model();
  Lora l;
  const std::string lin = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q";
  auto& a1 = l.add(lin + ".hada_w1_a", {8, 2}, 1);
  auto& b1 = l.add(lin + ".hada_w1_b", {2, 8}, 2);
  auto& a2 = l.add(lin + ".hada_w2_a", {8, 2}, 3);
  auto& b2 = l.add(lin + ".hada_w2_b", {2, 8}, 4);
  l.alpha(lin, 1.0f);
  // Tucker form on the 3x3 conv: t [r, r, 3, 3], w_a [r, Co], w_b [r, Ci].
  const std::string conv = "lora_unet_down_blocks_0_resnets_0_conv1";
  auto& t1 = l.add(conv + ".hada_t1", {2, 2, 3, 3}, 5);
  auto& ca1 = l.add(conv + ".hada_w1_a", {2, 8}, 6);
  auto& cb1 = l.add(conv + ".hada_w1_b", {2, 4}, 7);
  auto& t2 = l.add(conv + ".hada_t2", {2, 2, 3, 3}, 8);
  auto& ca2 = l.add(conv + ".hada_w2_a", {2, 8}, 9);
  auto& cb2 = l.add(conv + ".hada_w2_b", {2, 4}, 10);
  const LoraFile f = l.write(dir);
  EXPECT_EQ(f.format(), "kohya LoHa");
  merge(m, f, 1.0f);
  std::vector<float> d = ref_matmul(a1, b1, 8, 2, 8);
  const std::vector<float> d2 = ref_matmul(a2, b2, 8, 2, 8);
  for (size_t i = 0; i < d.size(); ++i) d[i] *= d2[i];
  expect_close(m.weights.get(kQ), plus(m.values[kQ], d, 0.5));
  std::vector<float> c = ref_tucker(t1, ca1, cb1, 2, 2, 9, 8, 4);
  const std::vector<float> c2 = ref_tucker(t2, ca2, cb2, 2, 2, 9, 8, 4);
  for (size_t i = 0; i < c.size(); ++i) c[i] *= c2[i];
  expect_close(m.weights.get(kConv), plus(m.values[kConv], c, 1.0));
}

TEST(LoraMerge, Lokr) {
  test::TempDir dir;
  Model m = mini_model();
  Lora l;
  // Linear 8x8 = kron(w1 [2, 2], w2a [4, 3] @ w2b [3, 4]); rank 3, alpha 1.5.
  const std::string lin = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q";
  auto& w1 = l.add(lin + ".lokr_w1", {2, 2}, 1);
  auto& w2a = l.add(lin + ".lokr_w2_a", {4, 3}, 2);
  auto& w2b = l.add(lin + ".lokr_w2_b", {3, 4}, 3);
  l.alpha(lin, 1.5f);
  // Conv [8, 4, 3, 3] = kron(w1a [2, 1] @ w1b [1, 2], w2 [4, 2, 3, 3]); rank 1, alpha 0.5.
  const std::string conv = "lora_unet_down_blocks_0_resnets_0_conv1";
  auto& c1a = l.add(conv + ".lokr_w1_a", {2, 1}, 4);
  auto& c1b = l.add(conv + ".lokr_w1_b", {1, 2}, 5);
  auto& c2 = l.add(conv + ".lokr_w2", {4, 2, 3, 3}, 6);
  l.alpha(conv, 0.5f);
  // 1x1 conv [8, 8, 1, 1] = kron(w1 [2, 2], Tucker(t2 [3, 3, 1, 1], w2a [3, 4], w2b [3, 4])).
  const std::string proj = "lora_unet_down_blocks_0_attentions_0_proj_in";
  auto& p1 = l.add(proj + ".lokr_w1", {2, 2}, 7);
  auto& pt = l.add(proj + ".lokr_t2", {3, 3, 1, 1}, 8);
  auto& p2a = l.add(proj + ".lokr_w2_a", {3, 4}, 9);
  auto& p2b = l.add(proj + ".lokr_w2_b", {3, 4}, 10);
  // Both factors whole: no rank, no alpha scaling. Text encoder 6x6 = kron([2, 3], [3, 2]).
  const std::string te = "lora_te_text_model_encoder_layers_0_self_attn_q_proj";
  auto& e1 = l.add(te + ".lokr_w1", {2, 3}, 11);
  auto& e2 = l.add(te + ".lokr_w2", {3, 2}, 12);
  l.alpha(te, 100.0f);  // ignored: nothing to divide by
  merge(m, l.write(dir), 1.0f);

  auto kron = [](const std::vector<float>& a, int64_t ar, int64_t ac, const std::vector<float>& b,
                 int64_t br, int64_t bc) {
    std::vector<float> out(size_t(ar * br * ac * bc));
    for (int64_t i = 0; i < ar; ++i)
      for (int64_t j = 0; j < ac; ++j)
        for (int64_t k = 0; k < br; ++k)
          for (int64_t n = 0; n < bc; ++n)
            out[size_t((i * br + k) * (ac * bc) + j * bc + n)] =
                a[size_t(i * ac + j)] * b[size_t(k * bc + n)];
    return out;
  };
  expect_close(m.weights.get(kQ),
               plus(m.values[kQ], kron(w1, 2, 2, ref_matmul(w2a, w2b, 4, 3, 4), 4, 4), 0.5));
  // torch.kron(w1[:, :, None, None], w2 [4, 2, 3, 3]): [8, 4, 3, 3], element
  // [i·4 + k, j·2 + q, s] = w1[i, j] · w2[k, q, s].
  const std::vector<float> cw1 = ref_matmul(c1a, c1b, 2, 1, 2);
  std::vector<float> cd(8 * 4 * 9);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 4; ++k)
        for (int q = 0; q < 2; ++q)
          for (int s = 0; s < 9; ++s)
            cd[size_t(((i * 4 + k) * 4 + (j * 2 + q)) * 9 + s)] =
                cw1[size_t(i * 2 + j)] * c2[size_t((k * 2 + q) * 9 + s)];
  expect_close(m.weights.get(kConv), plus(m.values[kConv], cd, 0.5));
  // Tucker w2, rank 3 and no alpha: factor 1.
  expect_close(
      m.weights.get(kProjIn),
      plus(m.values[kProjIn], kron(p1, 2, 2, ref_tucker(pt, p2a, p2b, 3, 3, 1, 4, 4), 4, 4), 1.0));
  expect_close(m.weights.get(kTeQ), plus(m.values[kTeQ], kron(e1, 2, 3, e2, 3, 2), 1.0));
}

// PEFT's DoRA merge: V = W + s·ΔW, W' = m · V / ‖V‖ with the norm over each output row.
std::vector<float> ref_dora_rows(const std::vector<float>& v, const std::vector<float>& mag,
                                 int64_t co) {
  const int64_t k = int64_t(v.size()) / co;
  std::vector<float> out(v.size());
  for (int64_t o = 0; o < co; ++o) {
    double ss = 0;
    for (int64_t j = 0; j < k; ++j) ss += double(v[size_t(o * k + j)]) * v[size_t(o * k + j)];
    for (int64_t j = 0; j < k; ++j)
      out[size_t(o * k + j)] = float(mag[size_t(o)] * v[size_t(o * k + j)] / std::sqrt(ss));
  }
  return out;
}

TEST(LoraMerge, DoraPeftLinear) {
  test::TempDir dir;
  Model m = mini_model();
  Lora l;
  const std::string mod = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q";
  auto& a = l.add(mod + ".lora_A.weight", {2, 8}, 1);
  auto& b = l.add(mod + ".lora_B.weight", {8, 2}, 2);
  auto& mag = l.add(mod + ".lora_magnitude_vector", {8}, 3);
  const LoraFile f = l.write(dir);
  EXPECT_EQ(f.format(), "peft LoRA+DoRA");
  merge(m, f, 0.7f);
  const std::vector<float> v = plus(m.values[kQ], ref_matmul(b, a, 8, 2, 8), 0.7);
  expect_close(m.weights.get(kQ), ref_dora_rows(v, mag, 8));
}

TEST(LoraMerge, DoraKohyaConvPerOutputAndPerInput) {
  test::TempDir dir;
  Model m = mini_model();
  Lora l;
  // Per output channel on the 3x3 conv: dora_scale [Co, 1, 1, 1].
  const std::string conv = "lora_unet_down_blocks_0_resnets_0_conv1";
  auto& cd = l.add(conv + ".lora_down.weight", {2, 4, 3, 3}, 1);
  auto& cu = l.add(conv + ".lora_up.weight", {8, 2, 1, 1}, 2);
  auto& cm = l.add(conv + ".dora_scale", {8, 1, 1, 1}, 3);
  l.alpha(conv, 1.0f);
  // Per input channel (LyCORIS wd_on_out = false) on the 1x1 conv: dora_scale [1, Ci, 1, 1].
  const std::string proj = "lora_unet_down_blocks_0_attentions_0_proj_in";
  auto& pd = l.add(proj + ".lora_down.weight", {2, 8, 1, 1}, 4);
  auto& pu = l.add(proj + ".lora_up.weight", {8, 2, 1, 1}, 5);
  auto& pm = l.add(proj + ".dora_scale", {1, 8, 1, 1}, 6);
  const LoraFile f = l.write(dir);
  merge(m, f, 1.0f);
  const std::vector<float> v = plus(m.values[kConv], ref_matmul(cu, cd, 8, 2, 36), 0.5);
  expect_close(m.weights.get(kConv), ref_dora_rows(v, cm, 8));
  const std::vector<float> pv = plus(m.values[kProjIn], ref_matmul(pu, pd, 8, 2, 8), 1.0);
  std::vector<float> want(pv.size());
  for (int j = 0; j < 8; ++j) {
    double ss = 0;
    for (int o = 0; o < 8; ++o) ss += double(pv[size_t(o * 8 + j)]) * pv[size_t(o * 8 + j)];
    for (int o = 0; o < 8; ++o)
      want[size_t(o * 8 + j)] = float(pm[size_t(j)] * pv[size_t(o * 8 + j)] / std::sqrt(ss));
  }
  expect_close(m.weights.get(kProjIn), want);
}

TEST(LoraMerge, PeftWithBaseModelPrefix) {
  test::TempDir dir;
  Model m = mini_model();
  Lora l;
  auto& ua =
      l.add("base_model.model.down_blocks.0.attentions.0.proj_in.lora_A.weight", {2, 8, 1, 1}, 1);
  auto& ub =
      l.add("base_model.model.down_blocks.0.attentions.0.proj_in.lora_B.weight", {8, 2, 1, 1}, 2);
  auto& ta = l.add("base_model.model.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight",
                   {2, 6}, 3);
  auto& tb = l.add("base_model.model.text_model.encoder.layers.0.self_attn.q_proj.lora_B.weight",
                   {6, 2}, 4);
  const LoraReport r = merge(m, l.write(dir), 1.0f);
  EXPECT_EQ(r.unet_modules, 1);
  EXPECT_EQ(r.text_encoder_modules, 1);
  expect_close(m.weights.get(kProjIn), plus(m.values[kProjIn], ref_matmul(ub, ua, 8, 2, 8), 1.0));
  expect_close(m.weights.get(kTeQ), plus(m.values[kTeQ], ref_matmul(tb, ta, 6, 2, 6), 1.0));
}

TEST(LoraMerge, SeveralLorasApplyInOrder) {
  test::TempDir dir;
  Model m = mini_model();
  const std::string mod = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q";
  Lora a, b;
  auto& ad = a.add(mod + ".lora_down.weight", {2, 8}, 1);
  auto& au = a.add(mod + ".lora_up.weight", {8, 2}, 2);
  auto& bd = b.add("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight",
                   {4, 8}, 3);
  auto& bu = b.add("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_B.weight",
                   {8, 4}, 4);
  const LoraTargets targets(m.weights);
  const LoraReport ra = merge_lora(m.weights, targets, a.write(dir, "a.safetensors"), 1.0f);
  const LoraReport rb = merge_lora(m.weights, targets, b.write(dir, "b.safetensors"), -0.5f);
  const std::vector<float> want =
      plus(plus(m.values[kQ], ref_matmul(au, ad, 8, 2, 8), 1.0), ref_matmul(bu, bd, 8, 4, 8), -0.5);
  expect_close(m.weights.get(kQ), want);
  EXPECT_EQ(ra.summary(), "a.safetensors: 1 UNet modules, 0 text-encoder modules");
  EXPECT_EQ(rb.format, "peft LoRA");
  EXPECT_EQ(rb.scale, -0.5f);
}

TEST(LoraMergeBadInput, UnmatchedKeyNamesIt) {
  test::TempDir dir;
  Model m = mini_model();
  Lora l;
  const std::string good = "lora_unet_down_blocks_0_attentions_0_proj_in";
  l.add(good + ".lora_down.weight", {2, 8}, 1);
  l.add(good + ".lora_up.weight", {8, 2}, 2);
  const std::string bad = "lora_unet_down_blocks_0_attentions_0_proj_sideways";
  l.add(bad + ".lora_down.weight", {2, 8}, 3);
  l.add(bad + ".lora_up.weight", {8, 2}, 4);
  const LoraFile f = l.write(dir);
  const std::string e = merge_error(m, f);
  EXPECT_NE(e.find(dir.file("l.safetensors") +
                   ": expected every LoRA module to match a weight of the model, found 1 of 2 "
                   "modules matching none: " +
                   bad + ".lora_up.weight"),
            std::string::npos)
      << e;
  EXPECT_EQ(m.weights.get(kProjIn).dtype, DType::F32);
  EXPECT_EQ(m.weights.get(kProjIn).to_f32(), m.values[kProjIn]);  // nothing merged

  const LoraReport r = merge(m, f, 1.0f, /*ignore_unmatched=*/true);
  EXPECT_EQ(r.unet_modules, 1);
  EXPECT_EQ(r.skipped, std::vector<std::string>{bad + ".lora_up.weight"});
  EXPECT_NE(m.weights.get(kProjIn).to_f32(), m.values[kProjIn]);
}

TEST(LoraMergeBadInput, TextEncoderLoraOnModelWithoutOne) {
  test::TempDir dir;
  Model m = mini_model(DType::F32, /*text_encoder=*/false);
  Lora l;
  const std::string te = "lora_te_text_model_encoder_layers_0_self_attn_q_proj";
  l.add(te + ".lora_down.weight", {2, 6}, 1);
  l.add(te + ".lora_up.weight", {6, 2}, 2);
  const std::string e = merge_error(m, l.write(dir));
  EXPECT_NE(e.find(te + ".lora_up.weight; the model has no text-encoder weights"),
            std::string::npos)
      << e;
}

TEST(LoraMergeBadInput, ShapeMismatchNamesKeyExpectedAndFound) {
  test::TempDir dir;
  Model m = mini_model();
  Lora l;
  const std::string mod = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q";
  l.add(mod + ".lora_down.weight", {2, 6}, 1);
  l.add(mod + ".lora_up.weight", {8, 2}, 2);
  const std::string e = merge_error(m, l.write(dir));
  EXPECT_NE(e.find(mod + ".lora_up.weight: expected a delta of shape [8, 8] for " + kQ +
                   ", found [8, 6] (lora_down [2, 6], lora_up [8, 2])"),
            std::string::npos)
      << e;
}

TEST(LoraMergeBadInput, KernelMismatch) {
  test::TempDir dir;
  Model m = mini_model();
  Lora l;
  // Same element count as the [8, 4, 3, 3] conv, but a 1x9 kernel.
  const std::string mod = "lora_unet_down_blocks_0_resnets_0_conv1";
  l.add(mod + ".lora_down.weight", {2, 4, 1, 9}, 1);
  l.add(mod + ".lora_up.weight", {8, 2, 1, 1}, 2);
  const std::string e = merge_error(m, l.write(dir));
  EXPECT_NE(e.find("expected a delta of shape [8, 4, 3, 3] for " + kConv + ", found [8, 4, 1, 9]"),
            std::string::npos)
      << e;
}

TEST(LoraMergeBadInput, PerInputDoraOfWrongWidth) {
  test::TempDir dir;
  Model m = mini_model();
  Lora l;
  const std::string conv = "lora_unet_down_blocks_0_resnets_0_conv1";
  l.add(conv + ".lora_down.weight", {2, 4, 3, 3}, 1);
  l.add(conv + ".lora_up.weight", {8, 2, 1, 1}, 2);
  l.add(conv + ".dora_scale", {1, 12, 1, 1}, 3);  // 12 divides 36, but Ci is 4
  const std::string e = merge_error(m, l.write(dir));
  EXPECT_NE(e.find(conv + ".dora_scale: expected 4 magnitudes (one per input channel of " + kConv +
                   "), found shape [1, 12, 1, 1]"),
            std::string::npos)
      << e;
}

TEST(LoraMergeBadInput, SdxlLora) {
  test::TempDir dir;
  Model m = mini_model();
  Lora l;
  const std::string te2 = "lora_te2_text_model_encoder_layers_0_self_attn_q_proj";
  l.add(te2 + ".lora_down.weight", {2, 1280}, 1);
  l.add(te2 + ".lora_up.weight", {1280, 2}, 2);
  const std::string unet = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k";
  l.add(unet + ".lora_down.weight", {2, 2048}, 3);
  l.add(unet + ".lora_up.weight", {640, 2}, 4);
  const std::string e = merge_error(m, l.write(dir));
  EXPECT_NE(e.find(dir.file("l.safetensors") + ": this LoRA is for SDXL, not SD1.5"),
            std::string::npos)
      << e;
}

TEST(LoraMergeBadInput, SdxlLabelEmbedding) {
  test::TempDir dir;
  Model m = mini_model();
  Lora l;
  l.add("lora_unet_label_emb_0_0.lora_down.weight", {2, 2816}, 1);
  l.add("lora_unet_label_emb_0_0.lora_up.weight", {1280, 2}, 2);
  const std::string e = merge_error(m, l.write(dir));
  EXPECT_NE(e.find("this LoRA is for SDXL, not SD1.5 (SDXL's size embedding: lora_unet_label_emb"),
            std::string::npos)
      << e;
}

TEST(LoraMergeBadInput, Sd2Lora) {
  test::TempDir dir;
  Model m = mini_model();
  Lora l;
  const std::string mod = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k";
  l.add(mod + ".lora_down.weight", {2, 1024}, 1);
  l.add(mod + ".lora_up.weight", {320, 2}, 2);
  const std::string e = merge_error(m, l.write(dir));
  EXPECT_NE(e.find("this LoRA is for SD2.x, not SD1.5 (cross-attention width 1024 in " + mod),
            std::string::npos)
      << e;
}

TEST(LoraMergeBadInput, TwoModulesForOneWeight) {
  test::TempDir dir;
  Model m = mini_model();
  Lora l;
  for (const std::string mod :
       {"lora_unet_input_blocks_1_1_proj_in", "lora_unet_down_blocks_0_attentions_0_proj_in"}) {
    l.add(mod + ".lora_down.weight", {2, 8}, 1);
    l.add(mod + ".lora_up.weight", {8, 2}, 2);
  }
  const std::string e = merge_error(m, l.write(dir));
  EXPECT_NE(e.find("expected one module per weight, found a second module for " + kProjIn),
            std::string::npos)
      << e;
}

TEST(LoraMergeBadInput, FailedMergeChangesNothing) {
  test::TempDir dir;
  Model m = mini_model();
  const void* before = m.weights.get(kConv).data;
  Lora l;
  // A DoRA magnitude on a delta that cancels a row of W exactly: the norm is zero.
  const std::string mod = "lora_unet_down_blocks_0_resnets_0_conv1";
  std::vector<float> up(8 * 1, 0.0f), down(36);
  up[0] = -1.0f;  // row 0 of ΔW = -W[0]: W + ΔW has a zero row
  for (int j = 0; j < 36; ++j) down[size_t(j)] = m.values[kConv][size_t(j)];
  l.tensors.set(mod + ".lora_up.weight", TensorRef::from_f32(up, {8, 1, 1, 1}, DType::F32));
  l.tensors.set(mod + ".lora_down.weight", TensorRef::from_f32(down, {1, 4, 3, 3}, DType::F32));
  l.add(mod + ".dora_scale", {8, 1, 1, 1}, 3);
  const std::string proj = "lora_unet_down_blocks_0_attentions_0_proj_in";
  l.add(proj + ".lora_down.weight", {2, 8}, 4);
  l.add(proj + ".lora_up.weight", {8, 2}, 5);
  const std::string e = merge_error(m, l.write(dir));
  EXPECT_NE(e.find(mod + ".dora_scale: expected a non-zero norm"), std::string::npos) << e;
  EXPECT_EQ(m.weights.get(kConv).data, before);
  EXPECT_EQ(m.weights.get(kProjIn).to_f32(), m.values[kProjIn]);
}

TEST(LoraMergeBadInput, NonFiniteScale) {
  test::TempDir dir;
  Model m = mini_model();
  Lora l;
  l.add("lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", {2, 8}, 1);
  l.add("lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight", {8, 2}, 2);
  EXPECT_NE(merge_error(m, l.write(dir), std::nanf("")).find("scale: expected a finite number"),
            std::string::npos);
}

}  // namespace
}  // namespace sdc::model
