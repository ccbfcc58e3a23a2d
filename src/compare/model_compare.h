// `sdc compare A B`: runs two models (or one model at two precisions) on the same inputs and
// measures, component by component, where and how much they differ — the questions users of the
// accelerator path asked by hand: is a bf16 model's drift normal, does a fine-tune ship another
// text encoder, where does a difference start.
//
// Rows, in pipeline order (A is the reference side of every metric):
//   text_encoder      last_hidden_state of the prompt (77 tokens)
//   unet t=999/500/1  ε for the same seeded latent and the same context (A's text embedding), so
//                     a UNet row measures the UNets alone
//   vae_decode        the image decoded from A's final latent, in [-1, 1]
//   taesd_decode      the same latent through TAESD (with --taesd), in [0, 1]
//   image             the two end-to-end generations (each with its own text encoder), 8-bit
// With `layers`, the UNet at t=500 block by block (input_blocks.*, middle_block,
// output_blocks.*, out), naming the first block where the difference jumps.
#pragma once

#include <string>
#include <vector>

#include "compare/diff_stats.h"
#include "compare/model_spec.h"
#include "pipeline/generation_request.h"

namespace sdc::compare {

struct CompareOptions {
  ModelSpec a, b;
  std::string model_config;             // --model-config, for both
  std::string taesd;                    // --taesd, for both: adds the taesd_decode row
  pipeline::GenerationRequest request;  // prompt, negative, seed, size, steps, sampler, cfg
  bool layers = false;
  int threads = 0;
};

struct ComponentRow {
  std::string name;  // "text_encoder", "unet t=999", "vae_decode"
  TensorDiff diff;
};

struct LayerRow {
  std::string block;  // "input_blocks.4"
  TensorDiff diff;
};

struct CompareReport {
  std::string a, b;  // labels (path@precision)
  std::vector<ComponentRow> components;
  ImageDiff image;
  std::string first_difference;  // first row (pipeline order) that differs; "" if none
  std::vector<LayerRow> layers;
  std::string jump_block;  // the first block whose relative difference jumps; "" if none
  double jump_ratio = 0;
};

CompareReport run_compare(const CompareOptions& options);

// Threshold of "differs" for a row: relative max difference above this (f32 runs of the same
// weights give exactly 0; the smallest real change, an fp16 rounding of the weights, gives ~1e-4).
inline constexpr double kDiffers = 1e-6;

// Where the difference jumps: the first block after the first differing one whose relative
// difference is at least `factor` times the largest before it, as (block, ratio); else the
// first differing block (above kDiffers), as (block, 0): where a gradual drift begins; ("", 0)
// when no block differs.
std::pair<std::string, double> first_jump(const std::vector<LayerRow>& layers, double factor = 4.0);

}  // namespace sdc::compare
