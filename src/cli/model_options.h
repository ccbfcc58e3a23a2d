// The model-selection flags shared by generate, bench and (with other short names) convert, and
// the convolution-algorithm flag of the commands that generate.
#pragma once

#include <CLI/CLI.hpp>

#include "pipeline/model_bundle.h"

namespace sdc::cli {

// -m/--model, --model-config, --vae, --text-encoder, --lora FILE[:SCALE] (repeatable),
// --control-net, --ignore-unmatched-lora-keys.
void add_model_options(CLI::App& cmd, pipeline::BundleOptions& options, bool model_required = true);

// --no-winograd (generate, serve, bench): sets `winograd` false, every bf16 convolution direct.
void add_winograd_flag(CLI::App& cmd, bool& winograd);

}  // namespace sdc::cli
