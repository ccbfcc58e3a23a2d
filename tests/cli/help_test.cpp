// `sdc <command> --help`: every option that has a default shows it (generate's A1111 defaults
// above all), so nobody needs the README to learn them; options without one, and empty lists,
// show none.
#include <gtest/gtest.h>

#include <sstream>

#include "common/fixtures.h"

namespace sdc {
namespace {

std::string help_of(const std::string& command) {
  test::CommandResult r = test::run_sdc({command, "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  return r.out;
}

// The default shown for `option` in a help text: CLI11 writes "  -o,--output TEXT=output.png
// Description", so the value after '=' in the token that follows the option's names. "" when the
// line shows no default; "<missing>" when no line names the option.
std::string default_of(const std::string& help, const std::string& option) {
  std::istringstream lines(help);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream tokens(line);
    std::string names, type;
    tokens >> names >> type;
    std::istringstream each(names);
    for (std::string name; std::getline(each, name, ',');) {
      if (name != option) continue;
      const size_t eq = type.find('=');
      return eq == std::string::npos ? "" : type.substr(eq + 1);
    }
  }
  return "<missing>";
}

TEST(CliHelp, GenerateShowsTheA1111Defaults) {
  const std::string h = help_of("generate");
  EXPECT_EQ(default_of(h, "--steps"), "20") << h;
  EXPECT_EQ(default_of(h, "--cfg-scale"), "7");
  EXPECT_EQ(default_of(h, "--sampler"), "euler_a");
  EXPECT_EQ(default_of(h, "--scheduler"), "automatic");
  EXPECT_EQ(default_of(h, "--width"), "512");
  EXPECT_EQ(default_of(h, "-H"), "512");
  EXPECT_EQ(default_of(h, "--seed"), "-1");
  EXPECT_EQ(default_of(h, "--clip-skip"), "1");
  EXPECT_EQ(default_of(h, "--batch-size"), "1");
  EXPECT_EQ(default_of(h, "--batch-count"), "1");
  EXPECT_EQ(default_of(h, "--precision"), "auto");
  EXPECT_EQ(default_of(h, "-o"), "output.png");
  EXPECT_EQ(default_of(h, "--strength"), "0.75");
  EXPECT_EQ(default_of(h, "--resize-mode"), "crop");
  EXPECT_EQ(default_of(h, "--control-scale"), "1");
  EXPECT_EQ(default_of(h, "--control-end"), "1");
  EXPECT_EQ(default_of(h, "--control-preprocess"), "none");
  EXPECT_EQ(default_of(h, "--canny-low"), "100");
  EXPECT_EQ(default_of(h, "--canny-high"), "200");
  // No default to show: required, empty, or a list.
  EXPECT_EQ(default_of(h, "--model"), "");
  EXPECT_EQ(default_of(h, "--prompt"), "");
  EXPECT_EQ(default_of(h, "--lora"), "");
}

TEST(CliHelp, ConvertBenchAndInspectShowTheirDefaults) {
  const std::string convert = help_of("convert");
  EXPECT_EQ(default_of(convert, "--type"), "f16") << convert;
  EXPECT_EQ(default_of(convert, "--batch"), "1");
  EXPECT_EQ(default_of(convert, "--version"), "sd15");
  EXPECT_EQ(default_of(convert, "--defaults"), "auto");
  EXPECT_EQ(default_of(convert, "--threads"), "0");
  EXPECT_EQ(default_of(convert, "--sizes"), "");
  EXPECT_EQ(default_of(convert, "--lora"), "");

  const std::string bench = help_of("bench");
  EXPECT_EQ(default_of(bench, "--precision"), "both") << bench;
  EXPECT_EQ(default_of(bench, "--cases"), "all");
  EXPECT_EQ(default_of(bench, "--unet-steps"), "2");
  EXPECT_EQ(default_of(bench, "--seed"), "1");
  EXPECT_EQ(default_of(bench, "--e2e-max-steps"), "4");
  EXPECT_EQ(default_of(bench, "--threads"), "0");

  const std::string inspect = help_of("inspect");
  EXPECT_EQ(default_of(inspect, "files"), "") << inspect;
  EXPECT_EQ(default_of(inspect, "--model-config"), "");
}

TEST(CliHelp, NoEmptyListIsShownAsADefault) {
  for (const char* command : {"generate", "convert", "inspect", "bench"}) {
    const std::string h = help_of(command);
    EXPECT_EQ(h.find("=[]"), std::string::npos) << command << ":\n" << h;
  }
}

}  // namespace
}  // namespace sdc
