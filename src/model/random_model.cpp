// Weight tables of each SD1.x component (written independently of the graph builders, so a test
// that checks both against a real checkpoint cross-checks the architecture) and a fast,
// counter-based random filler.
#include "model/random_model.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <thread>

#include "common/error.h"

namespace sdc::model {

namespace {

class Table {
 public:
  explicit Table(std::string prefix) : prefix_(std::move(prefix)) {}
  void add(const std::string& name, Shape s) { out_.emplace_back(prefix_ + name, std::move(s)); }
  // NAME.weight (+ NAME.bias [co]).
  void param(const std::string& name, Shape w, bool bias = true) {
    const int64_t co = w.front();
    add(name + ".weight", std::move(w));
    if (bias) add(name + ".bias", {co});
  }
  void norm(const std::string& name, int64_t c) { param(name, {c}); }
  void conv(const std::string& name, int64_t co, int64_t ci, int64_t k) {
    param(name, {co, ci, k, k});
  }
  WeightShapes take() { return std::move(out_); }

 private:
  std::string prefix_;
  WeightShapes out_;
};

void res_block(Table& t, const std::string& n, int64_t ci, int64_t co, int64_t temb) {
  t.norm(n + ".in_layers.0", ci);
  t.conv(n + ".in_layers.2", co, ci, 3);
  t.param(n + ".emb_layers.1", {co, temb});
  t.norm(n + ".out_layers.0", co);
  t.conv(n + ".out_layers.3", co, co, 3);
  if (ci != co) t.conv(n + ".skip_connection", co, ci, 1);
}

void transformer(Table& t, const std::string& n, int64_t c, const UNetParams& p) {
  t.norm(n + ".norm", c);
  auto proj = [&](const std::string& name) {
    if (p.use_linear_projection)
      t.param(name, {c, c});
    else
      t.conv(name, c, c, 1);
  };
  proj(n + ".proj_in");
  for (int d = 0; d < p.transformer_depth; ++d) {
    const std::string b = n + ".transformer_blocks." + std::to_string(d);
    for (const char* a : {".attn1", ".attn2"}) {
      const int64_t ckv = std::string(a) == ".attn1" ? c : p.context_dim;
      t.param(b + a + ".to_q", {c, c}, false);
      t.param(b + a + ".to_k", {c, ckv}, false);
      t.param(b + a + ".to_v", {c, ckv}, false);
      t.param(b + a + ".to_out.0", {c, c});
    }
    t.param(b + ".ff.net.0.proj", {8 * c, c});
    t.param(b + ".ff.net.2", {c, 4 * c});
    t.norm(b + ".norm1", c);
    t.norm(b + ".norm2", c);
    t.norm(b + ".norm3", c);
  }
  proj(n + ".proj_out");
}

// time_embed, input_blocks, middle_block; returns the skip channel counts.
std::vector<int64_t> unet_down(Table& t, const UNetParams& p) {
  const int64_t c0 = p.block_out_channels.front(), temb = p.time_embed_dim();
  t.param("time_embed.0", {temb, c0});
  t.param("time_embed.2", {temb, temb});
  t.conv("input_blocks.0.0", c0, p.in_channels, 3);
  std::vector<int64_t> skips{c0};
  int64_t ch = c0;
  int block = 1;
  const size_t levels = p.block_out_channels.size();
  for (size_t l = 0; l < levels; ++l) {
    const int64_t co = p.block_out_channels[l];
    for (int i = 0; i < p.layers_per_block; ++i, ++block) {
      const std::string n = "input_blocks." + std::to_string(block);
      res_block(t, n + ".0", ch, co, temb);
      ch = co;
      if (p.attention_levels.at(l)) transformer(t, n + ".1", ch, p);
      skips.push_back(ch);
    }
    if (l + 1 < levels) {
      t.conv("input_blocks." + std::to_string(block++) + ".0.op", ch, ch, 3);
      skips.push_back(ch);
    }
  }
  res_block(t, "middle_block.0", ch, ch, temb);
  transformer(t, "middle_block.1", ch, p);
  res_block(t, "middle_block.2", ch, ch, temb);
  return skips;
}

void vae_resnet(Table& t, const std::string& n, int64_t ci, int64_t co) {
  t.norm(n + ".norm1", ci);
  t.conv(n + ".conv1", co, ci, 3);
  t.norm(n + ".norm2", co);
  t.conv(n + ".conv2", co, co, 3);
  if (ci != co) t.conv(n + ".nin_shortcut", co, ci, 1);
}

void vae_mid(Table& t, const std::string& n, int64_t c) {
  vae_resnet(t, n + ".block_1", c, c);
  t.norm(n + ".attn_1.norm", c);
  for (const char* x : {".q", ".k", ".v", ".proj_out"}) t.conv(n + ".attn_1" + x, c, c, 1);
  vae_resnet(t, n + ".block_2", c, c);
}

// splitmix64's finaliser: a good 64-bit mix, used as a counter-based generator.
inline uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t name_hash(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

struct Fill {
  float center, half_width;  // uniform in [center - hw, center + hw)
};

bool ends_with(const std::string& s, const std::string& end) {
  return s.size() >= end.size() && s.compare(s.size() - end.size(), end.size(), end) == 0;
}

Fill fill_for(const std::string& name, const Shape& s) {
  const float sqrt3 = std::sqrt(3.f);  // uniform [-a, a) has std a / sqrt(3)
  if (name.find("embedding") != std::string::npos) return {0.f, 0.5f * sqrt3};
  if (s.size() == 1) {
    if (ends_with(name, ".bias")) return {0.f, 0.02f * sqrt3};
    return {1.f, 0.1f * sqrt3};  // a norm's scale
  }
  int64_t fan_in = 1;
  for (size_t i = 1; i < s.size(); ++i) fan_in *= s[i];
  return {0.f, sqrt3 / std::sqrt(float(fan_in))};
}

}  // namespace

WeightShapes unet_weight_shapes(const UNetParams& p) {
  Table t("model.diffusion_model.");
  std::vector<int64_t> skips = unet_down(t, p);
  const int64_t temb = p.time_embed_dim();
  int64_t ch = p.block_out_channels.back();
  int block = 0;
  for (int l = int(p.block_out_channels.size()) - 1; l >= 0; --l) {
    const int64_t co = p.block_out_channels[size_t(l)];
    for (int i = 0; i <= p.layers_per_block; ++i, ++block) {
      const std::string n = "output_blocks." + std::to_string(block);
      res_block(t, n + ".0", ch + skips.back(), co, temb);
      skips.pop_back();
      ch = co;
      int sub = 1;
      if (p.attention_levels.at(size_t(l))) transformer(t, n + "." + std::to_string(sub++), ch, p);
      if (l > 0 && i == p.layers_per_block)
        t.conv(n + "." + std::to_string(sub) + ".conv", ch, ch, 3);
    }
  }
  t.norm("out.0", ch);
  t.conv("out.2", p.out_channels, ch, 3);
  return t.take();
}

WeightShapes controlnet_weight_shapes(const ControlNetParams& p) {
  Table t("control_model.");
  const std::vector<int64_t> skips = unet_down(t, p.unet);
  const std::vector<int>& hc = p.hint_channels;
  int index = 0;
  auto hint = [&](int64_t co, int64_t ci) {
    t.conv("input_hint_block." + std::to_string(index), co, ci, 3);
    index += 2;  // the SiLUs between the convs take the odd indices
  };
  hint(hc.at(0), p.conditioning_channels);
  for (size_t i = 0; i + 1 < hc.size(); ++i) {
    hint(hc[i], hc[i]);
    hint(hc[i + 1], hc[i]);
  }
  hint(p.unet.block_out_channels.front(), hc.back());
  for (size_t i = 0; i < skips.size(); ++i)
    t.conv("zero_convs." + std::to_string(i) + ".0", skips[i], skips[i], 1);
  const int64_t cm = p.unet.block_out_channels.back();
  t.conv("middle_block_out.0", cm, cm, 1);
  return t.take();
}

WeightShapes text_encoder_weight_shapes(const TextEncoderParams& p) {
  Table t("cond_stage_model.transformer.text_model.");
  const int64_t c = p.hidden;
  t.add("embeddings.token_embedding.weight", {p.vocab_size, c});
  t.add("embeddings.position_embedding.weight", {p.max_positions, c});
  for (int l = 0; l < p.layers; ++l) {
    const std::string n = "encoder.layers." + std::to_string(l);
    for (const char* x : {".q_proj", ".k_proj", ".v_proj", ".out_proj"})
      t.param(n + ".self_attn" + x, {c, c});
    t.norm(n + ".layer_norm1", c);
    t.param(n + ".mlp.fc1", {p.intermediate, c});
    t.param(n + ".mlp.fc2", {c, p.intermediate});
    t.norm(n + ".layer_norm2", c);
  }
  t.norm("final_layer_norm", c);
  return t.take();
}

WeightShapes vae_weight_shapes(const VaeParams& p) {
  Table t("first_stage_model.");
  const std::vector<int>& ch = p.block_out_channels;
  const int levels = int(ch.size());
  const int64_t lc = p.latent_channels;
  // Encoder.
  t.conv("encoder.conv_in", ch.front(), p.in_channels, 3);
  int64_t c = ch.front();
  for (int l = 0; l < levels; ++l) {
    const std::string n = "encoder.down." + std::to_string(l);
    for (int i = 0; i < p.layers_per_block; ++i) {
      vae_resnet(t, n + ".block." + std::to_string(i), c, ch[size_t(l)]);
      c = ch[size_t(l)];
    }
    if (l + 1 < levels) t.conv(n + ".downsample.conv", c, c, 3);
  }
  vae_mid(t, "encoder.mid", c);
  t.norm("encoder.norm_out", c);
  t.conv("encoder.conv_out", 2 * lc, c, 3);
  t.conv("quant_conv", 2 * lc, 2 * lc, 1);
  // Decoder.
  t.conv("post_quant_conv", lc, lc, 1);
  c = ch.back();
  t.conv("decoder.conv_in", c, lc, 3);
  vae_mid(t, "decoder.mid", c);
  for (int l = levels - 1; l >= 0; --l) {
    const std::string n = "decoder.up." + std::to_string(l);
    for (int i = 0; i <= p.layers_per_block; ++i) {
      vae_resnet(t, n + ".block." + std::to_string(i), c, ch[size_t(l)]);
      c = ch[size_t(l)];
    }
    if (l > 0) t.conv(n + ".upsample.conv", c, c, 3);
  }
  t.norm("decoder.norm_out", c);
  t.conv("decoder.conv_out", p.out_channels, c, 3);
  return t.take();
}

WeightShapes taesd_weight_shapes() {
  constexpr int64_t c = 64, latent = 4;
  auto block = [](Table& t, int index) {
    for (const char* conv : {".conv.0", ".conv.2", ".conv.4"})
      t.conv(std::to_string(index) + conv, c, c, 3);
  };
  auto conv_no_bias = [](Table& t, int index) {
    t.param(std::to_string(index), {c, c, 3, 3}, /*bias=*/false);
  };
  // Decoder(): 0 clamp, 1 conv 4->64, 2 ReLU, (3 Blocks, upsample, conv without bias) x3 at
  // 3-7, 8-12, 13-17, 18 Block, 19 conv 64->3.
  Table dec("taesd.decoder.");
  dec.conv("1", c, latent, 3);
  for (int stage = 0; stage < 3; ++stage) {
    const int first = 3 + 5 * stage;
    for (int i = 0; i < 3; ++i) block(dec, first + i);
    conv_no_bias(dec, first + 4);
  }
  block(dec, 18);
  dec.conv("19", 3, c, 3);
  // Encoder(): 0 conv 3->64, 1 Block, (stride-2 conv without bias, 3 Blocks) x3 at 2-5, 6-9,
  // 10-13, 14 conv 64->4.
  Table enc("taesd.encoder.");
  enc.conv("0", c, 3, 3);
  block(enc, 1);
  for (int stage = 0; stage < 3; ++stage) {
    const int first = 2 + 4 * stage;
    conv_no_bias(enc, first);
    for (int i = 1; i <= 3; ++i) block(enc, first + i);
  }
  enc.conv("14", latent, c, 3);
  WeightShapes out = dec.take();
  const WeightShapes e = enc.take();
  out.insert(out.end(), e.begin(), e.end());
  return out;
}

std::string WeightShapeCheck::report(size_t limit) const {
  std::string out;
  auto list = [&](const char* kind, const std::vector<std::string>& items) {
    for (size_t i = 0; i < items.size() && i < limit; ++i)
      out += std::string(kind) + ": " + items[i] + "\n";
    if (items.size() > limit)
      out += std::string(kind) + ": ... " + std::to_string(items.size() - limit) + " more\n";
  };
  list("missing", missing);
  list("unexpected", unexpected);
  list("wrong shape", wrong_shape);
  return out;
}

WeightShapeCheck check_weight_shapes(const WeightMap& weights, const WeightShapes& expected,
                                     const std::string& prefix) {
  WeightShapeCheck c;
  std::map<std::string, const Shape*> table;
  for (const auto& [name, shape] : expected) {
    table[name] = &shape;
    const TensorRef* t = weights.find(name);
    if (!t)
      c.missing.push_back(name);
    else if (t->shape != shape)
      c.wrong_shape.push_back(name + ": expected " + shape_str(shape) + ", found " +
                              shape_str(t->shape));
  }
  for (const std::string& name : weights.names_with_prefix(prefix))
    if (!table.count(name)) c.unexpected.push_back(name);
  return c;
}

WeightMap make_random_weights(const WeightShapes& shapes, uint64_t seed, DType dtype) {
  if (dtype != DType::F32 && dtype != DType::F16 && dtype != DType::BF16)
    throw Error("random model", "dtype", "F32, F16 or BF16", std::string(dtype_name(dtype)));
  struct Job {
    const std::string* name;
    Fill fill;
    uint64_t key;
    uint8_t* data;
    int64_t begin, end;
  };
  constexpr int64_t kChunk = 1 << 20;
  WeightMap out;
  out.description = "random SD1.x weights (seed " + std::to_string(seed) + ")";
  std::vector<Job> jobs;
  const size_t esize = dtype_size(dtype);
  for (const auto& [name, shape] : shapes) {
    const int64_t n = shape_numel(shape);
    std::shared_ptr<uint8_t> buf(new uint8_t[size_t(n) * esize], std::default_delete<uint8_t[]>());
    TensorRef t;
    t.dtype = dtype;
    t.shape = shape;
    t.data = buf.get();
    t.nbytes = size_t(n) * esize;
    t.owner = buf;
    t.source = out.description;
    const Fill f = fill_for(name, shape);
    const uint64_t key = mix(seed ^ mix(name_hash(name)));
    for (int64_t b = 0; b < n; b += kChunk)
      jobs.push_back({&name, f, key, buf.get(), b, std::min(n, b + kChunk)});
    out.set(name, std::move(t));
  }
  std::atomic<size_t> next{0};
  auto worker = [&] {
    float tmp[4096];
    for (size_t j; (j = next.fetch_add(1)) < jobs.size();) {
      const Job& job = jobs[j];
      for (int64_t b = job.begin; b < job.end; b += 4096) {
        const int64_t e = std::min(job.end, b + 4096);
        for (int64_t i = b; i < e; ++i) {
          // 24 random bits -> uniform [-1, 1).
          const float u = float(mix(job.key + uint64_t(i)) >> 40) * (2.f / 16777216.f) - 1.f;
          tmp[i - b] = job.fill.center + job.fill.half_width * u;
        }
        convert_from_f32(dtype, tmp, job.data + size_t(b) * esize, size_t(e - b));
      }
    }
  };
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();
  return out;
}

WeightMap make_random_sd15(uint64_t seed, DType dtype, bool with_controlnet) {
  RandomModelParts parts;
  parts.controlnet = with_controlnet;
  return make_random_sd15(seed, dtype, parts);
}

WeightMap make_random_sd15(uint64_t seed, DType dtype, const RandomModelParts& parts) {
  WeightShapes shapes;
  auto append = [&](WeightShapes s) { shapes.insert(shapes.end(), s.begin(), s.end()); };
  if (parts.unet) append(unet_weight_shapes(UNetParams{}));
  if (parts.text_encoder) append(text_encoder_weight_shapes(TextEncoderParams{}));
  if (parts.vae) append(vae_weight_shapes(VaeParams{}));
  if (parts.controlnet) append(controlnet_weight_shapes(ControlNetParams{}));
  if (parts.taesd) append(taesd_weight_shapes());
  return make_random_weights(shapes, seed, dtype);
}

}  // namespace sdc::model
