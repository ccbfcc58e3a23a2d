// PlanCache: build each component graph once per shape and compile it for the CPU backend.
#include "pipeline/plan_cache.h"

#include "backend/cpu/activation_arena.h"
#include "common/error.h"
#include "common/tensor.h"
#include "graph/builders/builders.h"

namespace sdc::pipeline {

cpu::PlanOptions denoiser_options(cpu::PlanOptions base) {
  base.bf16_residuals = true;
  return base;
}

PlanCache::PlanCache(const model::LoadedModel& model, cpu::PlanOptions options, bool vae_int8)
    : model_(model),
      options_(std::move(options)),
      vae_int8_(vae_int8),
      text_params_(model.text_encoder) {
  // The components run one after another and every caller reads a plan's outputs before the next
  // plan runs, so all of this model's plans share one activation arena and one scratch.
  if (!options_.arena) options_.arena = std::make_shared<cpu::ActivationArena>();
  if (!options_.scratch) options_.scratch = std::make_shared<cpu::ActivationArena>();
  decoder_int8_options_ = options_;  // sharing those arenas
  decoder_int8_options_.precision = cpu::Precision::INT8;
  // The int8 decoders' error is W8A8's: bf16 residual sums add little to it (VAE decode relative
  // L2 3.63 -> 3.71 %, image 39.38 -> 39.20 dB) and take 8 % off the decode (README).
  decoder_int8_options_.bf16_residuals = true;
  // The denoiser's options, which TAESD's plans take too: at bf16 TAESD likewise stores its
  // blocks' residual sums as bf16 (as PyTorch autocast): they had been kept f32 with a bf16 copy
  // for the next convolution, 14 conversions a 512x512 decode (5.5 % of it on a Zen 4; decode
  // 230 -> 210 ms); its relative L2 against f32 1.19 -> 1.34e-2 (docs/performance-history.md,
  // the seventeenth stop), small next to TAESD's own distance from the VAE.
  bf16_residual_options_ = denoiser_options(options_);
}

PlanCache::~PlanCache() {
  const FilePageReleaseBatch batch;
  plans_.clear();
}

const cpu::PlanOptions* PlanCache::decoder_options(const cpu::PlanOptions* float_options) const {
  return vae_int8_ ? &decoder_int8_options_ : float_options;
}

void PlanCache::use_token_table(TensorRef table) {
  static const std::string kName =
      std::string(graph::kTextEncoderPrefix) + "embeddings.token_embedding.weight";
  if (!text_weights_) text_weights_ = model_.weights;  // shallow: views on the same bytes
  text_params_.vocab_size = int(table.shape.at(0));
  text_weights_->set(kName, std::move(table));
  std::erase_if(plans_,
                [](const auto& kv) { return std::get<0>(kv.first) == PlanKind::TextEncoder; });
}

template <typename BuildFn>
PlanCache::Entry& PlanCache::get(const Key& key, BuildFn build, const cpu::PlanOptions* options) {
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second;
  graph::Graph g = build();
  Entry e;
  e.macs = g.macs();
  e.plan = cpu::Plan::compile(g, options ? *options : options_);
  return plans_.emplace(key, std::move(e)).first->second;
}

namespace {
Component component_of(PlanKind kind) {
  switch (kind) {
    case PlanKind::TextEncoder:
      return Component::TextEncoder;
    case PlanKind::UNet:
    case PlanKind::UNetWithControl:
    case PlanKind::UNetLdm:
    case PlanKind::UNetLdmWithControl:
    case PlanKind::ControlNet:
      return Component::Denoiser;
    case PlanKind::VaeDecoder:
    case PlanKind::VaeEncoder:
    case PlanKind::VaeDecoderHead:
    case PlanKind::VaeDecoderTail:
    case PlanKind::VaeEncoderHead:
    case PlanKind::VaeEncoderTail:
      return Component::Vae;
    case PlanKind::TaesdDecoder:
    case PlanKind::TaesdEncoder:
      return Component::Taesd;
  }
  return Component::Vae;  // unreachable: every kind is listed
}
}  // namespace

void PlanCache::release(Component component) {
  const FilePageReleaseBatch batch;  // the plans' mapped weights, one madvise per run of pages
  std::erase_if(plans_,
                [&](const auto& kv) { return component_of(std::get<0>(kv.first)) == component; });
}

cpu::Plan& PlanCache::text_encoder(int batch, int clip_skip) {
  return *get({PlanKind::TextEncoder, batch, clip_skip, 0, 0}, [&] {
            return graph::build_text_encoder(text_weights_ ? *text_weights_ : model_.weights,
                                             text_params_, batch, clip_skip);
          }).plan;
}

cpu::Plan& PlanCache::unet(int batch, int h, int w, int tokens, bool with_control,
                           bool ldm_upsampling) {
  const bool ldm = ldm_upsampling && (h % 8 != 0 || w % 8 != 0);
  const PlanKind kind = ldm ? (with_control ? PlanKind::UNetLdmWithControl : PlanKind::UNetLdm)
                            : (with_control ? PlanKind::UNetWithControl : PlanKind::UNet);
  return *get(
              {kind, batch, h, w, tokens},
              [&] {
                graph::UNetShape shape{batch, h, w, tokens, with_control, ldm};
                return graph::build_unet(model_.weights, model_.unet, shape);
              },
              &bf16_residual_options_)
              .plan;
}

int64_t PlanCache::unet_macs(int batch, int h, int w, int tokens) {
  return get(
             {PlanKind::UNet, batch, h, w, tokens},
             [&] {
               graph::UNetShape shape{batch, h, w, tokens, false};
               return graph::build_unet(model_.weights, model_.unet, shape);
             },
             &bf16_residual_options_)
      .macs;
}

cpu::Plan& PlanCache::vae_decoder(int batch, int h, int w, graph::VaePart part) {
  const PlanKind kind = part == graph::VaePart::Head   ? PlanKind::VaeDecoderHead
                        : part == graph::VaePart::Tail ? PlanKind::VaeDecoderTail
                                                       : PlanKind::VaeDecoder;
  return *get(
              {kind, batch, h, w, 0},
              [&] {
                return graph::build_vae_decoder(model_.weights, model_.vae, batch, h, w, part,
                                                vae_int8_);
              },
              decoder_options())
              .plan;
}

cpu::Plan& PlanCache::vae_encoder(int batch, int h, int w, graph::VaePart part) {
  const PlanKind kind = part == graph::VaePart::Head   ? PlanKind::VaeEncoderHead
                        : part == graph::VaePart::Tail ? PlanKind::VaeEncoderTail
                                                       : PlanKind::VaeEncoder;
  return *get({kind, batch, h, w, 0}, [&] {
            return graph::build_vae_encoder(model_.weights, model_.vae, batch, 8 * h, 8 * w, part);
          }).plan;
}

cpu::Plan& PlanCache::controlnet(int batch, int h, int w, int tokens) {
  if (!model_.controlnet)
    throw Error(model_.source, "ControlNet", "control_model.* weights", "none");
  return *get(
              {PlanKind::ControlNet, batch, h, w, tokens},
              [&] {
                return graph::build_controlnet(model_.weights, *model_.controlnet, batch, h, w,
                                               tokens);
              },
              &bf16_residual_options_)
              .plan;
}

cpu::Plan& PlanCache::taesd_decoder(int batch, int h, int w) {
  if (!model_.taesd.decoder)
    throw UsageError("", "--taesd",
                     "a TAESD decoder (--taesd FILE|DIR, or a model converted with it)",
                     "none loaded");
  return *get(
              {PlanKind::TaesdDecoder, batch, h, w, 0},
              [&] { return graph::build_taesd_decoder(model_.weights, batch, h, w, vae_int8_); },
              decoder_options(&bf16_residual_options_))
              .plan;
}

cpu::Plan& PlanCache::taesd_encoder(int batch, int height, int width) {
  if (!model_.taesd.encoder)
    throw UsageError("", "--taesd", "a TAESD encoder (taesd_encoder.* next to the decoder)",
                     "none loaded");
  return *get(
              {PlanKind::TaesdEncoder, batch, height, width, 0},
              [&] { return graph::build_taesd_encoder(model_.weights, batch, height, width); },
              &bf16_residual_options_)
              .plan;
}

}  // namespace sdc::pipeline
