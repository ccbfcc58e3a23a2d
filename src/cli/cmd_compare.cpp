// `sdc compare A B`: how far two models, or one model at two precisions, differ — per component
// and end to end (compare/model_compare.h).
//
//   sdc compare A[@f32|@bf16|@f16|@int8][+vae-int8][+direct] B[@…] [-p PROMPT] [-n NEG] [--seed S]
//               [-W W -H H] [--steps N] [--sampler S] [--scheduler S] [--cfg-scale X] [--layers]
//               [--json] [--model-config DIR] [--taesd PATH] [--threads N]
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "compare/compare_report.h"
#include "compare/model_compare.h"

namespace sdc::cli {
namespace {

struct CompareArgs {
  std::string a, b, model_config, taesd;
  pipeline::GenerationRequest request;
  bool layers = false, json = false;
  int threads = 0;
};

void run_compare(CompareArgs& args) {
  compare::CompareOptions o;
  o.a = compare::parse_model_spec(args.a);
  o.b = compare::parse_model_spec(args.b);
  o.model_config = args.model_config;
  o.taesd = args.taesd;
  o.request = args.request;
  o.layers = args.layers;
  o.threads = args.threads;
  const compare::CompareReport r = compare::run_compare(o);
  if (args.json)
    std::cout << compare::report_json(r).dump(2) << "\n";
  else
    std::cout << compare::report_text(r);
}

}  // namespace

void add_compare_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "compare",
      "Run two models (or precisions: A@f32 B@bf16) on the same inputs and report "
      "how far each component and the final image differ");
  auto a = std::make_shared<CompareArgs>();
  a->request.prompt = "a photo of a cat";
  a->request.seed = 42;
  cmd->add_option("A", a->a, "Reference model[@f32|@bf16|@f16|@int8][+vae-int8][+direct]")
      ->required();
  cmd->add_option("B", a->b, "Model to compare[@f32|@bf16|@f16|@int8][+vae-int8][+direct]")
      ->required();
  cmd->add_option("-p,--prompt", a->request.prompt, "Prompt (default: \"a photo of a cat\")");
  cmd->add_option("-n,--negative-prompt", a->request.negative_prompt, "Negative prompt");
  cmd->add_option("--seed", a->request.seed, "Seed of the latent and the generations (42)");
  cmd->add_option("-W,--width", a->request.width, "Image width (512)");
  cmd->add_option("-H,--height", a->request.height, "Image height (512)");
  cmd->add_option("--steps", a->request.steps, "Sampler steps of the generations (20)");
  cmd->add_option("--sampler", a->request.sampler, "lcm | ddim | euler | euler_a | dpmpp_2m");
  cmd->add_option("--scheduler", a->request.scheduler, "default | karras");
  cmd->add_option("--cfg-scale", a->request.cfg_scale, "Classifier-free guidance scale (7)");
  cmd->add_flag("--layers", a->layers, "Walk the UNet block by block and name where it jumps");
  cmd->add_flag("--json", a->json, "Print the report as JSON");
  cmd->add_option("--model-config", a->model_config,
                  "Diffusers-style folder with unet/, text_encoder/, vae/ config.json (both)");
  cmd->add_option("--taesd", a->taesd,
                  "TAESD for both models (file or folder): adds the taesd_decode row");
  cmd->add_option("--threads", a->threads, "Threads (0: all cores)");
  cmd->callback([a] { run_compare(*a); });
}

}  // namespace sdc::cli
