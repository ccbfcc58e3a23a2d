// Loading a model with its LoRAs and ControlNet.
#include "pipeline/model_bundle.h"

#include <filesystem>
#include <future>

#include "common/error.h"
#include "io/open_file.h"
#include "model/classify.h"
#include "model/compiled_model.h"
#include "model/infer_hparams.h"
#include "pipeline/compat.h"
#include "pipeline/packed_section.h"

namespace sdc::pipeline {
using text::ClipTokenizer;

void attach_controlnet(model::LoadedModel& m, const std::string& path,
                       const std::string& model_config_dir) {
  io::TensorFile file = io::open_tensor_file(path);
  model::Classification c = model::classify(file);
  if (c.kind != model::ModelKind::ControlNet)
    throw Error(path, "--control-net",
                "a ControlNet (control_model.* or a diffusers ControlNetModel)",
                std::string(model::kind_name(c.kind)));
  if (!c.supported())
    throw Error(path, "--control-net", "a ControlNet for SD1.x",
                std::string(model::architecture_name(c.architecture)));
  WeightMap ldm = model::to_ldm_weights(file, c);
  for (const auto& name : ldm.names_with_prefix("control_model."))
    m.weights.set(name, ldm.get(name));
  model::ControlNetParams p = model::infer_controlnet_params(m.weights);
  p.unet.num_heads = m.unet.num_heads;
  for (auto& [component, cfg] : model::configs_of(file))
    if (component == "controlnet") model::apply_controlnet_config(p, cfg.first, cfg.second);
  if (!model_config_dir.empty()) {
    model::ConfigSet set = model::read_model_config_dir(model_config_dir);
    if (auto it = set.find("controlnet"); it != set.end())
      model::apply_controlnet_config(p, it->second.first, it->second.second);
  }
  if (p.unet.context_dim != m.unet.context_dim ||
      p.unet.block_out_channels != m.unet.block_out_channels)
    throw Error(
        path, "--control-net",
        "a ControlNet matching the UNet (context " + std::to_string(m.unet.context_dim) + ")",
        "context " + std::to_string(p.unet.context_dim));
  m.controlnet = p;
}

ModelBundle load_bundle(const BundleOptions& o, std::ostream& log) {
  if (o.model.empty())
    throw UsageError("", "-m/--model", "a model file or diffusers folder", "an empty path");
  model::LoadOptions lo;
  lo.model_config_dir = o.model_config;
  lo.vae_path = o.vae;
  lo.text_encoder_path = o.text_encoder;
  lo.taesd_path = o.taesd;
  ModelBundle b;
  const io::TensorFile file = io::open_tensor_file(o.model);
  const auto info = model::read_compiled_info(file);
  // The tokenizer (its ~49k tokens and merges indexed at every start, ~30 ms) is built on another
  // core while the weights load on this one; the load still fails on a bad one. The built-in one
  // is built once per process, at its first use, unless this starts it.
  std::future<std::unique_ptr<ClipTokenizer>> tokenizer;
  if (info && !info->tokenizer_vocab_json.empty())
    tokenizer = std::async(std::launch::async, [&info, &o] {
      return std::make_unique<ClipTokenizer>(info->tokenizer_vocab_json, info->tokenizer_merges,
                                             o.model + ": sdc.tokenizer");
    });
  else
    tokenizer = std::async(std::launch::async, [] {
      ClipTokenizer::builtin();
      return std::unique_ptr<ClipTokenizer>();
    });
  b.model = model::load_model(file, lo);
  offer_packed_section(file, log);
  if (info) {
    b.defaults.sampler = info->defaults.sampler;
    b.defaults.scheduler = info->defaults.scheduler;
    b.defaults.steps = info->defaults.steps;
    b.defaults.cfg_scale = info->defaults.cfg_scale;
    b.declared_sizes = info->sizes;
    b.declared_batch = info->batch;
    b.unet_int8 = info->unet_compute == "int8";
    b.vae_int8 = info->vae_compute == "int8";
  }
  b.name = std::filesystem::path(o.model).stem().string();
  if (b.name.empty()) b.name = std::filesystem::path(o.model).parent_path().filename().string();
  std::vector<model::LoraSpec> specs;
  for (const auto& arg : o.loras) specs.push_back(model::parse_lora_arg(arg));
  b.loras = model::merge_loras(b.model.weights, specs, o.ignore_unmatched_lora_keys);
  for (const auto& r : b.loras) log << r.summary() << "\n";
  if (!o.controlnet.empty()) attach_controlnet(b.model, o.controlnet, o.model_config);
  if (!o.embeddings_dir.empty()) {
    b.embeddings = model::load_embeddings(o.embeddings_dir, b.model.text_encoder.hidden, log);
    log << o.embeddings_dir << ": " << b.embeddings.embeddings.size()
        << " textual-inversion embeddings";
    for (size_t i = 0; i < b.embeddings.embeddings.size(); ++i)
      log << (i ? ", " : ": ") << b.embeddings.embeddings[i].name;
    log << "\n";
  }
  b.own_tokenizer = tokenizer.get();
  return b;
}

GenerationParams describe(const ModelBundle& b, const GenerationRequest& r, int64_t seed) {
  GenerationParams p;
  p.prompt = r.prompt;
  p.negative_prompt = r.negative_prompt;
  p.steps = r.steps;
  const SamplerDescription sd = describe_sampling(r);
  p.sampler = sd.sampler;
  p.schedule_type = sd.schedule_type;
  p.cfg_scale = r.cfg_scale;
  p.seed = seed;
  p.width = r.width;
  p.height = r.height;
  p.model = b.name;
  p.clip_skip = r.clip_skip;
  p.rng = sd.rng;
  p.ensd = sd.ensd;
  p.extra = sd.extra;
  if (!r.init_image.empty()) p.denoising_strength = r.strength;
  // A1111 names a non-default autoencoder method in the infotext.
  if (r.decode_with == "taesd") p.extra.emplace_back("VAE Decoder", "TAESD");
  if (r.encode_with == "taesd" && is_img2img(r) && !r.init_latents_data)
    p.extra.emplace_back("VAE Encoder", "TAESD");
  for (const auto& l : b.loras)
    p.loras.push_back({std::filesystem::path(l.file).stem().string(), ""});
  if (!r.control_image.empty()) {
    ControlNetInfo c;
    c.module = r.control_preprocess;
    c.weight = r.control_scale;
    c.guidance_start = r.control_start;
    c.guidance_end = r.control_end;
    if (r.control_preprocess == "canny") {
      c.threshold_a = r.canny_low;
      c.threshold_b = r.canny_high;
    }
    p.controlnets.push_back(c);
  }
  return p;
}

void apply_defaults(const ModelBundle& b, GenerationRequest& r) {
  const RecommendedDefaults& d = b.defaults;
  if (!r.sampler_set && !d.sampler.empty()) r.sampler = d.sampler;
  if (!r.scheduler_set && !d.scheduler.empty()) r.scheduler = d.scheduler;
  if (!r.steps_set && d.steps > 0) r.steps = d.steps;
  if (!r.cfg_set && d.cfg_scale >= 0) r.cfg_scale = d.cfg_scale;
}

}  // namespace sdc::pipeline
