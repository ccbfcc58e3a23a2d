// The web page's files (assets/web/*), embedded in the binary at build time by
// cmake/EmbedFiles.cmake (the generated web_assets.cpp lives in the build folder).
#pragma once

#include <string_view>
#include <vector>

namespace sdc::server {

struct WebAsset {
  std::string_view path;  // relative to assets/web, e.g. "index.html", "js/api.js"
  std::string_view bytes;
};

const std::vector<WebAsset>& web_assets();

}  // namespace sdc::server
