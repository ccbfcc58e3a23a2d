// Building the plans of the declared sizes through the PlanCache (which keeps them).
#include "pipeline/plan_warmup.h"

namespace sdc::pipeline {

size_t warm_plans(PlanCache& plans, const WarmupSpec& spec) {
  const size_t before = plans.plan_count();
  constexpr int kTokens = 77;  // one prompt chunk, what a prompt of up to 75 tokens needs
  plans.text_encoder(1, spec.clip_skip);
  for (const auto& [width, height] : spec.sizes) {
    const int h = height / 8, w = width / 8;
    // The decoders first: their activations are a size's largest, so an ArenaPrefault running
    // beside this has the whole arena to populate from the start (a one-shot run plans its full
    // VAE apart, after the prefault: engine.cpp).
    if (spec.vae_decoder) plans.vae_decoder(1, h, w);  // the pipeline decodes one at a time
    if (spec.taesd_decoder) plans.taesd_decoder(1, h, w);
    for (int b : spec.unet_batches) {
      plans.unet(b, h, w, kTokens, spec.with_control);
      if (spec.with_control) plans.controlnet(b, h, w, kTokens);
    }
  }
  return plans.plan_count() - before;
}

}  // namespace sdc::pipeline
