// Model-selection flags.
#include "cli/model_options.h"

namespace sdc::cli {

void add_model_options(CLI::App& cmd, pipeline::BundleOptions& o, bool model_required) {
  auto* m =
      cmd.add_option("-m,--model", o.model,
                     "Model: .safetensors/.ckpt single file, diffusers folder or compiled .gguf");
  if (model_required) m->required();
  cmd.add_option(
      "--model-config", o.model_config,
      "Diffusers-style folder with unet/, text_encoder/, vae/ config.json (non-standard widths)");
  cmd.add_option("--vae", o.vae, "VAE to use instead of (or in the absence of) the model's own");
  cmd.add_option("--text-encoder", o.text_encoder,
                 "Text encoder to use instead of the model's own");
  cmd.add_option("--taesd", o.taesd,
                 "TAESD (Tiny AutoEncoder) decoder file, or a folder with taesd_decoder/encoder or "
                 "a diffusers AutoencoderTiny: fast previews, --decode-with/--encode-with taesd");
  cmd.add_option("--lora", o.loras, "LoRA FILE[:SCALE] merged into the weights (repeatable)");
  cmd.add_option("--control-net", o.controlnet, "ControlNet file (original or diffusers layout)");
  cmd.add_flag("--ignore-unmatched-lora-keys", o.ignore_unmatched_lora_keys,
               "Apply the LoRA modules that match and skip the others (default: error)");
}

void add_winograd_flag(CLI::App& cmd, bool& winograd) {
  cmd.add_flag_callback(
      "--no-winograd", [&winograd] { winograd = false; },
      "Every 3x3 convolution direct (default: Winograd F(2x2,3x3) for the larger layers where "
      "that is faster here, F(2x2,2x2) phases for those over a 2x upsampling: bf16 ~1.45x VAE "
      "decode, ~1.2x UNet step at 512x512, a layer's error ~3.5x the direct one's; int8 ~1.15x "
      "UNet step, ~1.25x VAE decode, a layer's error ~2.5x; f32 (AVX2 CPUs and those without "
      "AVX-512 BF16) f32 throughout, F(4x4,3x3) and F(4x4,2x2) phases where a layer has enough "
      "4x4 blocks: ~2.3x VAE decode and ~1.6x CFG UNet step on a Zen 3 with F(2x2) alone, F(4x4) "
      "another ~1.4x VAE decode on an Ice Lake; the transformed kernels take more memory: the "
      "UNet's ~210 MiB more at int8, its 16x16 level's alone 301 at bf16, ~930 MiB more at f32 "
      "(~1.4 GiB at batch 2), the f32 VAE decoder's ~700)");
}

}  // namespace sdc::cli
