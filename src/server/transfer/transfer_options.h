// What `sdc serve` lets uploads, downloads and the server-file browser do (flags of `sdc serve`,
// see cli/transfer_flags.cpp). Defaults are the safe ones: https only, no private addresses.
#pragma once

#include <cstdint>
#include <string>

namespace sdc::server::transfer {

struct TransferOptions {
  std::string imports_dir;  // --imports-dir: a second folder the file browser shows ("imports")
  std::string uploads_dir;  // --uploads-dir (default: MODELS_DIR/.sdc-uploads)
  uint64_t max_upload_bytes = uint64_t(16) << 30;    // --max-upload-size
  uint64_t max_download_bytes = uint64_t(16) << 30;  // --max-download-size
  int download_timeout_s = 6 * 3600;                 // --download-timeout (all attempts)
  int download_connect_timeout_s = 20;
  bool allow_http = false;               // --allow-http
  bool allow_private_downloads = false;  // --allow-private-downloads
};

}  // namespace sdc::server::transfer
