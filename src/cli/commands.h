// Each sdc subcommand lives in its own cli/cmd_*.cpp and adds itself to the app here.
// A command's callback throws sdc::Error for bad input; main() prints it as one line, exit 2.
#pragma once

#include <CLI/CLI.hpp>

namespace sdc::cli {

void add_inspect_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_serve_command(CLI::App& app);
void add_compare_command(CLI::App& app);

}  // namespace sdc::cli
