// sdc entry point: builds the CLI11 app from the subcommands and maps failures to exit codes
// (0 success, 2 bad input or usage, 1 internal error), always with one line on stderr.
#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "common/error.h"

int main(int argc, char** argv) {
  CLI::App app{"sdc — compile Stable Diffusion 1.5 models into one file and generate images fast"};
  app.set_version_flag("--version", std::string("sdc ") + SDC_VERSION);
  app.require_subcommand(1);
  // Every option's default shows in `sdc <command> --help` (subcommands inherit this setting).
  app.option_defaults()->always_capture_default();
  sdc::cli::add_inspect_command(app);
  sdc::cli::add_generate_command(app);
  sdc::cli::add_convert_command(app);
  sdc::cli::add_bench_command(app);
  sdc::cli::add_compare_command(app);
  sdc::cli::add_serve_command(app);
  // An empty list's captured default ("[]") says nothing: show none.
  for (CLI::App* cmd : app.get_subcommands([](CLI::App*) { return true; }))
    for (CLI::Option* opt : cmd->get_options([](CLI::Option*) { return true; }))
      if (opt->get_default_str() == "[]") opt->default_str("");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "sdc: %s\n", e.what());
    return 2;
  } catch (const sdc::Error& e) {
    std::fprintf(stderr, "sdc: %s\n", e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "sdc: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sdc: internal error: %s\n", e.what());
    return 1;
  }
  return 0;
}
