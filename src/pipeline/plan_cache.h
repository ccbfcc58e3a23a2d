// PlanCache: the compiled plans of one model, built on first use per (component, batch, size,
// context length) and kept for every later image — "compile once, run many". Weights are shared
// between plans of the same component by the backend's weight cache; all plans share one
// activation arena and scratch (they run one at a time), and release() drops a component's plans
// after its last use.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <tuple>

#include "backend/cpu/plan.h"
#include "graph/builders/vae.h"
#include "model/model_loader.h"

namespace sdc::pipeline {

enum class PlanKind {
  TextEncoder,
  UNet,
  UNetWithControl,
  UNetLdm,  // LDM/A1111 upsampling; only built where it differs (a latent side not % 8)
  UNetLdmWithControl,
  VaeDecoder,
  VaeEncoder,
  VaeDecoderHead,  // VAE tiling's parts (graph::VaePart)
  VaeDecoderTail,
  VaeEncoderHead,
  VaeEncoderTail,
  ControlNet,
  TaesdDecoder,
  TaesdEncoder
};

// The options the denoiser (UNet, ControlNet) compiles with: `base` with its residual sums in
// bf16 wherever values are bf16 at all (as PyTorch bf16 inference keeps them). Measured on the
// full-size UNet at 512x512: the bf16 step 4-5 % faster (the sums are memory-bound); on the
// fixture UNet max|d|/max|ref| 1.7e-2 -> 2.1e-2 against torch's own bf16 3.5e-2. The text
// encoder and the image decoders keep f32 sums (their error doubled for little time).
// Its larger bf16 convolutions run as Winograd like the decoders' (winograd_pays; at 512x512 the
// step ~1.1x faster, 1.16x at batch 2), measured over the steps, not only per layer: against f32
// (LCM-4) UNet rel. L2 1.73-1.75 % direct, 1.74-1.76 % with Winograd, image PSNR 50.50 / 50.52 dB;
// euler_a 20 steps cfg 7 45.17 / 45.11 dB (docs/performance-history.md, "The fourth night").
cpu::PlanOptions denoiser_options(cpu::PlanOptions base);

// The parts of a pipeline whose plans are dropped together (PlanCache::release).
enum class Component { TextEncoder, Denoiser /* UNet and ControlNet */, Vae, Taesd };

class PlanCache {
 public:
  // vae_int8: the image decoders' plans — the VAE decoder's and TAESD's — run their int8-eligible
  // layers W8A8 (graph::mark_vae_decoder_int8_layers, build_taesd_decoder; float steps as `auto`
  // chooses), whatever options.precision says for the rest.
  PlanCache(const model::LoadedModel& model, cpu::PlanOptions options, bool vae_int8 = false);
  // Drops the plans with their mapped weights' pages released in a few calls (release()).
  ~PlanCache();
  PlanCache(const PlanCache&) = delete;
  PlanCache& operator=(const PlanCache&) = delete;

  // Latent sizes (h, w) are in latent pixels; VaeEncoder takes image pixels (8h, 8w) implicitly.
  cpu::Plan& text_encoder(int batch, int clip_skip);
  // Text encoder plans from now on look tokens up in `table` (the model's token-embedding table
  // with textual-inversion rows appended, model::extend_token_table); cached ones are dropped.
  void use_token_table(TensorRef table);
  // ldm_upsampling: A1111's up path (graph::UNetShape); the same plan as diffusers' when both
  // latent sides are multiples of 8.
  cpu::Plan& unet(int batch, int latent_h, int latent_w, int context_tokens, bool with_control,
                  bool ldm_upsampling = false);
  cpu::Plan& vae_decoder(int batch, int latent_h, int latent_w,
                         graph::VaePart part = graph::VaePart::Whole);
  cpu::Plan& vae_encoder(int batch, int latent_h, int latent_w,
                         graph::VaePart part = graph::VaePart::Whole);
  cpu::Plan& controlnet(int batch, int latent_h, int latent_w, int context_tokens);
  // TAESD (model.taesd says which networks exist; sdc::Error naming --taesd when absent). The
  // encoder takes image pixels (height, width).
  cpu::Plan& taesd_decoder(int batch, int latent_h, int latent_w);
  cpu::Plan& taesd_encoder(int batch, int height, int width);

  // Drops every plan of `component`, and with them the packed weights no other plan holds (their
  // memory goes back to the system); a later request for one compiles it again. For a caller
  // that knows a component's last use (a process that makes one image).
  void release(Component component);

  // Multiply-accumulates of the UNet graph last built/used for (batch, h, w, tokens).
  int64_t unet_macs(int batch, int latent_h, int latent_w, int context_tokens);
  const model::LoadedModel& model() const { return model_; }
  const cpu::PlanOptions& options() const { return options_; }
  bool vae_int8() const { return vae_int8_; }
  size_t plan_count() const { return plans_.size(); }

 private:
  using Key = std::tuple<PlanKind, int, int, int, int>;
  struct Entry {
    std::unique_ptr<cpu::Plan> plan;
    int64_t macs = 0;
  };
  template <typename BuildFn>
  Entry& get(const Key& key, BuildFn build, const cpu::PlanOptions* options = nullptr);
  // The options an image decoder's plans compile with: INT8 ones when vae_int8, else
  // `float_options` (null: the cache's own).
  const cpu::PlanOptions* decoder_options(const cpu::PlanOptions* float_options = nullptr) const;

  const model::LoadedModel& model_;
  cpu::PlanOptions options_;
  bool vae_int8_ = false;
  cpu::PlanOptions decoder_int8_options_;  // options_ at INT8, sharing its arenas
  // denoiser_options(options_), sharing its arenas: the UNet's, the ControlNet's and TAESD's
  cpu::PlanOptions bf16_residual_options_;
  std::optional<WeightMap> text_weights_;  // the model's weights with another token table
  model::TextEncoderParams text_params_;
  std::map<Key, Entry> plans_;
};

}  // namespace sdc::pipeline
