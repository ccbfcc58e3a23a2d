// add_transfer_flags: `sdc serve`'s transfer options, sizes with K/M/G suffixes.
#include "cli/transfer_flags.h"

#include <cctype>
#include <cstdlib>

#include "common/error.h"

namespace sdc::cli {

uint64_t parse_byte_size(const std::string& text, const std::string& option) {
  const UsageError bad("", option, "a size such as 1048576, 512M or 8G", "\"" + text + "\"");
  if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0]))) throw bad;
  size_t used = 0;
  unsigned long long n = 0;
  try {
    n = std::stoull(text, &used);
  } catch (const std::exception&) {
    throw bad;
  }
  std::string unit = text.substr(used);
  if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b')) unit.pop_back();
  int shift = 0;
  if (unit.empty())
    shift = 0;
  else if (unit == "K" || unit == "k")
    shift = 10;
  else if (unit == "M" || unit == "m")
    shift = 20;
  else if (unit == "G" || unit == "g")
    shift = 30;
  else if (unit == "T" || unit == "t")
    shift = 40;
  else
    throw bad;
  if (n == 0 || (shift > 0 && n > (~0ULL >> shift))) throw bad;
  return uint64_t(n) << shift;
}

void add_transfer_flags(CLI::App& cmd, server::transfer::TransferOptions& o) {
  cmd.add_option("--imports-dir", o.imports_dir,
                 "A second folder the page's file browser shows as convert sources");
  cmd.add_option("--uploads-dir", o.uploads_dir,
                 "Where uploads are kept until converted (default: MODELS_DIR/.sdc-uploads)");
  cmd.add_option_function<std::string>(
      "--max-upload-size",
      [&o](const std::string& v) { o.max_upload_bytes = parse_byte_size(v, "--max-upload-size"); },
      "Largest upload (default 16G)");
  cmd.add_option_function<std::string>(
      "--max-download-size",
      [&o](const std::string& v) {
        o.max_download_bytes = parse_byte_size(v, "--max-download-size");
      },
      "Largest file a convert job downloads (default 16G)");
  cmd.add_option("--download-timeout", o.download_timeout_s,
                 "Seconds a download may take in all (default 21600)")
      ->check(CLI::Range(1, 7 * 24 * 3600));
  cmd.add_flag("--allow-http", o.allow_http, "Let convert jobs download over plain http");
  cmd.add_flag("--allow-private-downloads", o.allow_private_downloads,
               "Let downloads reach loopback, private and link-local addresses");
}

}  // namespace sdc::cli
