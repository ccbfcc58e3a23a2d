// `sdc inspect FILE... [--json] [--model-config DIR]`: what a model file holds.
// (First cut: format, size and tensor count of safetensors files; the model layer extends it.)
#include <iostream>

#include "cli/commands.h"
#include "common/error.h"
#include "io/safetensors.h"

namespace sdc::cli {

void add_inspect_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Describe model files, LoRAs, ControlNets, GGUFs and PNGs");
  auto files = std::make_shared<std::vector<std::string>>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("files", *files, "Files or diffusers folders")->required();
  cmd->add_flag("--json", *json, "One JSON object per file");
  cmd->callback([files, json] {
    for (const auto& f : *files) {
      io::TensorFile tf = io::read_safetensors(f);
      nlohmann::json j{{"file", f},
                       {"format", io::format_name(tf.format)},
                       {"file_size", tf.file_size},
                       {"tensors", tf.tensors.size()}};
      if (*json)
        std::cout << j.dump() << "\n";
      else
        std::cout << f << ": " << j["format"].get<std::string>() << ", " << tf.file_size
                  << " bytes, " << tf.tensors.size() << " tensors\n";
    }
  });
}

}  // namespace sdc::cli
