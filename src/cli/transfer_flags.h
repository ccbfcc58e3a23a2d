// The `sdc serve` flags for uploads, downloads and the server-file browser (server/transfer).
#pragma once

#include <CLI/CLI.hpp>

#include "server/transfer/transfer_options.h"

namespace sdc::cli {

// --imports-dir, --uploads-dir, --max-upload-size, --max-download-size, --download-timeout,
// --allow-http, --allow-private-downloads. Sizes accept K/M/G suffixes (powers of 1024).
void add_transfer_flags(CLI::App& cmd, server::transfer::TransferOptions& options);

// "512M", "4G", "1048576" → bytes; sdc::UsageError naming `option` otherwise.
uint64_t parse_byte_size(const std::string& text, const std::string& option);

}  // namespace sdc::cli
