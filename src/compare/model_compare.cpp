// The comparison runs: component plans of both models on shared inputs, the two end-to-end
// generations, and the block-by-block UNet walk.
#include "compare/model_compare.h"

#include <algorithm>
#include <map>

#include "common/error.h"
#include "graph/builders/builders.h"
#include "pipeline/plan_cache.h"
#include "pipeline/stable_diffusion.h"
#include "sampling/rng/torch_generator.h"

namespace sdc::compare {

namespace {

std::vector<float> output_of(const cpu::Plan& p, const std::string& name) {
  const float* y = p.output(name);
  return {y, y + shape_numel(p.output_shape(name))};
}

// NCHW [1, C, H, W] -> NHWC.
std::vector<float> to_nhwc(const std::vector<float>& x, int64_t c, int64_t hw) {
  std::vector<float> y(x.size());
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t i = 0; i < hw; ++i) y[size_t(i * c + ch)] = x[size_t(ch * hw + i)];
  return y;
}

void require_same_shape(const pipeline::ModelBundle& a, const pipeline::ModelBundle& b,
                        const CompareOptions& o) {
  auto check = [&](const char* what, int x, int y) {
    if (x != y)
      throw Error(o.b.path, what, std::to_string(x) + " (as " + o.a.path + ")", std::to_string(y));
  };
  check("UNet context width", a.model.unet.context_dim, b.model.unet.context_dim);
  check("UNet input channels", a.model.unet.in_channels, b.model.unet.in_channels);
  check("text encoder width", a.model.text_encoder.hidden, b.model.text_encoder.hidden);
  check("latent channels", a.model.vae.latent_channels, b.model.vae.latent_channels);
}

// The block a UNet IR node belongs to: "input_blocks.4", "middle_block", "output_blocks.11",
// "out"; "" for nodes outside blocks (inputs, weights, the time embedding).
std::string block_of(const graph::Node& n) {
  if (n.op == graph::Op::Weight || n.op == graph::Op::Input) return "";
  const std::string& s = n.name;
  for (const char* prefix : {"input_blocks.", "output_blocks."}) {
    const std::string p = prefix;
    if (s.compare(0, p.size(), p) == 0) {
      const size_t dot = s.find('.', p.size());
      return s.substr(0, dot);
    }
  }
  if (s.compare(0, 12, "middle_block") == 0) return "middle_block";
  if (s.compare(0, 4, "out.") == 0) return "out";
  return "";
}

// The UNet at (h, w) with every block's last value as an extra output, in block order.
graph::Graph unet_with_blocks(const model::LoadedModel& m, int h, int w,
                              std::vector<std::string>& blocks) {
  graph::Graph g = graph::build_unet(m.weights, m.unet, {1, h, w, 77, false});
  std::map<std::string, graph::ValueId> last;
  blocks.clear();
  for (graph::ValueId v = 0; v < graph::ValueId(g.nodes().size()); ++v) {
    const std::string b = block_of(g.node(v));
    if (b.empty()) continue;
    if (!last.count(b)) blocks.push_back(b);
    last[b] = v;
  }
  for (const auto& b : blocks) g.output("block:" + b, last[b]);
  return g;
}

}  // namespace

std::pair<std::string, double> first_jump(const std::vector<LayerRow>& layers, double factor) {
  size_t start = 0;
  while (start < layers.size() && layers[start].diff.rel_max <= kDiffers) ++start;
  if (start == layers.size()) return {"", 0.0};
  double before = layers[start].diff.rel_max;
  for (size_t i = start + 1; i < layers.size(); ++i) {
    const double r = layers[i].diff.rel_max;
    if (r >= factor * before) return {layers[i].block, r / before};
    before = std::max(before, r);
  }
  return {layers[start].block, 0.0};  // no jump after the start: where the difference begins
}

CompareReport run_compare(const CompareOptions& o) {
  pipeline::GenerationRequest req = o.request;
  if (req.seed < 0) req.seed = 42;
  req.batch_size = req.batch_count = 1;
  pipeline::validate(req);
  CompareReport report;
  report.a = o.a.label();
  report.b = o.b.label();

  const pipeline::ModelBundle A = load_for_compare(o.a, o.model_config, o.taesd);
  const pipeline::ModelBundle B = load_for_compare(o.b, o.model_config, o.taesd);
  require_same_shape(A, B, o);
  cpu::PlanOptions pa, pb;
  pa.precision = o.a.compute();
  pb.precision = o.b.compute();
  pa.threads = pb.threads = o.threads;
  pa.winograd = !o.a.direct;
  pb.winograd = !o.b.direct;
  pipeline::PlanCache ca(A.model, pa, o.a.vae_int8), cb(B.model, pb, o.b.vae_int8);

  // Text encoder on the prompt's first 77 tokens.
  const std::vector<int> ids = A.tokenizer().encode_padded(req.prompt, 77);
  auto encode = [&](pipeline::PlanCache& c) {
    cpu::Plan& p = c.text_encoder(1, req.clip_skip);
    std::copy(ids.begin(), ids.end(), p.input_i32("input_ids"));
    p.run();
    return output_of(p, "last_hidden_state");
  };
  const std::vector<float> context = encode(ca);
  report.components.push_back({"text_encoder", tensor_diff(context, encode(cb))});

  // UNet at three timesteps on the seeded latent, both with A's context.
  const int h = req.height / 8, w = req.width / 8;
  const int64_t lc = A.model.unet.in_channels;
  sampling::TorchGenerator gen(uint64_t(req.seed));
  const std::vector<float> latent = to_nhwc(gen.randn({1, lc, h, w}), lc, int64_t(h) * w);
  auto unet = [&](pipeline::PlanCache& c, float t) {
    cpu::Plan& p = c.unet(1, h, w, 77, false);
    std::copy(latent.begin(), latent.end(), p.input_f32("sample"));
    *p.input_f32("timestep") = t;
    std::copy(context.begin(), context.end(), p.input_f32("context"));
    p.run();
    return output_of(p, "eps");
  };
  for (int t : {999, 500, 1})
    report.components.push_back(
        {"unet t=" + std::to_string(t), tensor_diff(unet(ca, float(t)), unet(cb, float(t)))});

  // End to end, each model with its own text encoder; then both decoders on A's final latent.
  pipeline::StableDiffusion sa(A.model, pa, A.tokenizer(), A.name, o.a.vae_int8);
  pipeline::StableDiffusion sb(B.model, pb, B.tokenizer(), B.name, o.b.vae_int8);
  const pipeline::BatchResult ra = sa.generate_batch(req, req.seed);
  const pipeline::BatchResult rb = sb.generate_batch(req, req.seed);
  const std::vector<float> unet_latent =
      to_nhwc(ra.latents, ra.latent_shape.at(1), ra.latent_shape.at(2) * ra.latent_shape.at(3));
  std::vector<float> final_latent = unet_latent;
  for (float& x : final_latent) x /= A.model.vae.scaling_factor;
  // An image decoder's output for a latent, one run of its plan.
  auto decode = [](cpu::Plan& p, const std::vector<float>& latent) {
    std::copy(latent.begin(), latent.end(), p.input_f32("latent"));
    p.run();
    return output_of(p, "image");
  };
  report.components.push_back(
      {"vae_decode", tensor_diff(decode(ca.vae_decoder(1, h, w), final_latent),
                                 decode(cb.vae_decoder(1, h, w), final_latent))});
  // TAESD takes the UNet's latents as they are (no scaling factor).
  if (!o.taesd.empty())
    report.components.push_back(
        {"taesd_decode", tensor_diff(decode(ca.taesd_decoder(1, h, w), unet_latent),
                                     decode(cb.taesd_decoder(1, h, w), unet_latent))});
  report.image = image_diff(ra.images.at(0).image.rgb, rb.images.at(0).image.rgb);

  for (const auto& row : report.components)
    if (row.diff.rel_max > kDiffers) {
      report.first_difference = row.name;
      break;
    }
  if (report.first_difference.empty() && report.image.max_level > 0)
    report.first_difference = "image";

  if (o.layers) {
    std::vector<std::string> blocks_a, blocks_b;
    // The UNet as generation compiles it (PlanCache does the same for the rows above).
    auto plan_a = cpu::Plan::compile(unet_with_blocks(A.model, h, w, blocks_a),
                                     pipeline::denoiser_options(pa));
    auto plan_b = cpu::Plan::compile(unet_with_blocks(B.model, h, w, blocks_b),
                                     pipeline::denoiser_options(pb));
    if (blocks_a != blocks_b)
      throw Error(o.b.path, "UNet blocks",
                  std::to_string(blocks_a.size()) + " blocks as " + o.a.path,
                  std::to_string(blocks_b.size()));
    for (cpu::Plan* p : {plan_a.get(), plan_b.get()}) {
      std::copy(latent.begin(), latent.end(), p->input_f32("sample"));
      *p->input_f32("timestep") = 500.f;
      std::copy(context.begin(), context.end(), p->input_f32("context"));
      p->run();
    }
    for (const auto& b : blocks_a)
      report.layers.push_back(
          {b, tensor_diff(output_of(*plan_a, "block:" + b), output_of(*plan_b, "block:" + b))});
    std::tie(report.jump_block, report.jump_ratio) = first_jump(report.layers);
  }
  return report;
}

}  // namespace sdc::compare
