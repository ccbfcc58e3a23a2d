// user_hash_cache: the per-user cache folder, made on first use.
#include "cli/user_cache.h"

#include <cstdlib>
#include <filesystem>

namespace sdc::cli {

std::string user_hash_cache() {
  std::filesystem::path dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    dir = std::filesystem::path(xdg) / "sdc";
  else if (const char* home = std::getenv("HOME"); home && *home)
    dir = std::filesystem::path(home) / ".cache" / "sdc";
  else
    return "";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  return ec ? "" : (dir / "hashes.json").string();
}

}  // namespace sdc::cli
