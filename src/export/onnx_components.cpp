// Per-component IR builds and ONNX input/output declarations.
#include "export/onnx_components.h"

#include "common/error.h"
#include "export/graph_to_onnx.h"
#include "graph/builders/builders.h"

namespace sdc::exporter {

namespace {

// The build sizes for symbolic exports: two distinct batches and latent sizes whose halvings
// never coincide, so that every symbolic dimension differs between the builds.
struct Build {
  int batch, height, width, tokens;  // latent height/width
};
constexpr Build kMain{2, 13, 11, 77}, kProbe{3, 21, 19, 154};

Dim sym(const std::string& name, bool fixed, int64_t value) {
  return fixed ? Dim::fixed(value) : Dim::symbolic(name);
}

int64_t halve(int64_t x, int times) {
  for (int i = 0; i < times; ++i) x = (x + 1) / 2;
  return x;
}

// Context inputs shared by UNet and ControlNet.
std::vector<IoSpec> unet_inputs(const model::UNetParams& p, const Build& b, bool fixed) {
  return {
      {"sample",
       "sample",
       {sym("batch", fixed, b.batch), Dim::fixed(p.in_channels), sym("height", fixed, b.height),
        sym("width", fixed, b.width)}},
      {"timestep", "timestep", {sym("batch", fixed, b.batch)}},
      {"context",
       "encoder_hidden_states",
       {sym("batch", fixed, b.batch), sym("sequence", fixed, b.tokens), Dim::fixed(p.context_dim)}},
  };
}

// The control residuals' declarations (UNet inputs, ControlNet outputs).
std::vector<IoSpec> control_specs(const model::UNetParams& p, const Build& b, bool fixed,
                                  bool controlnet_side) {
  std::vector<IoSpec> out;
  const auto shapes = graph::unet_skip_shapes(p, b.batch, b.height, b.width);
  int level = 0;
  for (size_t i = 0; i < shapes.size(); ++i) {
    const Shape& s = shapes[i];
    while (halve(b.height, level) != s[1]) ++level;
    const std::string k = level == 0 ? "" : "_" + std::to_string(1 << level);
    const std::string name = graph::control_down_name(int(i));
    out.push_back({controlnet_side ? graph::controlnet_down_name(int(i)) : name,
                   name,
                   {sym("batch", fixed, b.batch), Dim::fixed(s[3]), sym("height" + k, fixed, s[1]),
                    sym("width" + k, fixed, s[2])}});
  }
  const Shape m = graph::unet_mid_shape(p, b.batch, b.height, b.width);
  const std::string k = "_" + std::to_string(1 << level);
  out.push_back({controlnet_side ? graph::kControlNetMid : graph::kControlMid,
                 graph::kControlMid,
                 {sym("batch", fixed, b.batch), Dim::fixed(m[3]), sym("height" + k, fixed, m[1]),
                  sym("width" + k, fixed, m[2])}});
  return out;
}

graph::UNetShape unet_shape(const Build& b, bool control) {
  graph::UNetShape s;
  s.batch = b.batch;
  s.height = b.height;
  s.width = b.width;
  s.context_tokens = b.tokens;
  s.with_control = control;
  return s;
}

struct Built {
  graph::Graph graph;
  GraphExportOptions options;
};

Built build(const model::LoadedModel& m, const ComponentSpec& c, const Build& b, bool fixed,
            bool control_inputs) {
  Built out;
  auto& o = out.options;
  const auto img = [&](const std::string& ir, const std::string& onnx, int64_t ch) {
    return IoSpec{
        ir,
        onnx,
        {sym("batch", fixed, b.batch), Dim::fixed(ch), sym("image_height", fixed, 8 * b.height),
         sym("image_width", fixed, 8 * b.width)}};
  };
  const auto lat = [&](const std::string& ir, const std::string& onnx, int64_t ch) {
    return IoSpec{ir,
                  onnx,
                  {sym("batch", fixed, b.batch), Dim::fixed(ch), sym("height", fixed, b.height),
                   sym("width", fixed, b.width)}};
  };
  switch (c.kind) {
    case ComponentKind::TextEncoder: {
      const auto& p = m.text_encoder;
      out.graph = graph::build_text_encoder_both(m.weights, p, b.batch);
      o.doc =
          "CLIP text encoder. last_hidden_state = final_layer_norm(last layer); "
          "penultimate_hidden_state = final_layer_norm(hidden_states[-2]) (clip skip 2).";
      o.inputs = {
          {"input_ids", "input_ids", {sym("batch", fixed, b.batch), Dim::fixed(p.max_positions)}}};
      const std::vector<Dim> d{sym("batch", fixed, b.batch), Dim::fixed(p.max_positions),
                               Dim::fixed(p.hidden)};
      o.outputs = {{"last_hidden_state", "last_hidden_state", d},
                   {"penultimate_ln", "penultimate_hidden_state", d}};
      break;
    }
    case ComponentKind::UNet: {
      const bool control = control_inputs || m.controlnet.has_value();
      out.graph = graph::build_unet(m.weights, m.unet, unet_shape(b, control));
      o.doc = "SD1.5 UNet: epsilon prediction for a latent at a timestep and a text context";
      o.inputs = unet_inputs(m.unet, b, fixed);
      if (control) {
        o.doc +=
            "; control_down_* and control_mid are added to the skip connections and the "
            "middle block (ControlNet residuals, already times the conditioning scale)";
        for (auto& s : control_specs(m.unet, b, fixed, false)) o.inputs.push_back(s);
      }
      o.outputs = {lat("eps", "out_sample", m.unet.out_channels)};
      break;
    }
    case ComponentKind::VaeDecoder: {
      const auto& p = m.vae;
      out.graph = graph::build_vae_decoder(m.weights, p, b.batch, b.height, b.width);
      o.doc =
          "VAE decoder: latent as sampled (times scaling_factor) -> image in [-1, 1] "
          "(not clamped); the graph divides by scaling_factor first";
      IoSpec in = lat("latent", "latent", p.latent_channels);
      in.scale = 1.f / p.scaling_factor;
      o.inputs = {in};
      o.outputs = {img("image", "image", p.out_channels)};
      break;
    }
    case ComponentKind::VaeEncoder: {
      const auto& p = m.vae;
      out.graph = graph::build_vae_encoder(m.weights, p, b.batch, 8 * b.height, 8 * b.width);
      o.doc =
          "VAE encoder: image in [-1, 1] -> posterior mean and logvar (not times "
          "scaling_factor; clamp logvar to [-30, 20], std = exp(logvar / 2))";
      o.inputs = {img("image", "image", p.in_channels)};
      o.outputs = {lat("mean", "mean", p.latent_channels),
                   lat("logvar", "logvar", p.latent_channels)};
      break;
    }
    case ComponentKind::ControlNet: {
      const auto& p = *m.controlnet;
      out.graph = graph::build_controlnet(m.weights, p, unet_shape(b, false));
      o.doc =
          "ControlNet: residuals for the UNet's control_down_* / control_mid inputs, "
          "already times `scale`; hint is RGB in [0, 1] at the image size";
      o.inputs = unet_inputs(p.unet, b, fixed);
      o.inputs.push_back(img("hint", "hint", p.conditioning_channels));
      o.inputs.push_back({"scale", "scale", {Dim::fixed(1)}});
      o.outputs = control_specs(p.unet, b, fixed, true);
      break;
    }
  }
  o.graph_name = c.id;
  return out;
}

}  // namespace

std::vector<ComponentSpec> components_of(const model::LoadedModel& m, int batch) {
  std::vector<ComponentSpec> out{
      {ComponentKind::TextEncoder, "text_encoder", "text_encoder", "text_encoder.onnx"},
      {ComponentKind::UNet, "unet", "unet", "unet_fuse_" + std::to_string(batch) + ".onnx"},
      {ComponentKind::VaeEncoder, "vae_encoder", "vae_encoder", "vae_encoder.onnx"},
      {ComponentKind::VaeDecoder, "vae_decoder", "vae_decoder", "vae_decoder.onnx"},
  };
  if (m.controlnet)
    out.push_back({ComponentKind::ControlNet, "controlnet", "controlnet",
                   "controlnet_" + std::to_string(batch) + ".onnx"});
  return out;
}

OnnxModel component_onnx(const model::LoadedModel& m, const ComponentSpec& c,
                         const ShapeOptions& shapes, ElemType compute, bool control_inputs) {
  if (shapes.fixed) {
    if (shapes.width % 8 != 0 || shapes.height % 8 != 0)
      throw Error("onnx export", "size", "multiples of 8",
                  std::to_string(shapes.width) + "x" + std::to_string(shapes.height));
    const Build b{shapes.batch, shapes.height / 8, shapes.width / 8, 77};
    Built one = build(m, c, b, true, control_inputs);
    one.options.compute = compute;
    return graph_to_onnx(one.graph, nullptr, one.options);
  }
  Built main = build(m, c, kMain, false, control_inputs);
  const Built probe = build(m, c, kProbe, false, control_inputs);
  main.options.compute = compute;
  return graph_to_onnx(main.graph, &probe.graph, main.options);
}

}  // namespace sdc::exporter
