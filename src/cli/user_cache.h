// Where the command-line tools keep per-user state between runs: the model-hash cache that makes
// A1111's "Model hash" free after a model's first use.
#pragma once

#include <string>

namespace sdc::cli {

// $XDG_CACHE_HOME/sdc/hashes.json (or ~/.cache/sdc/hashes.json). Empty (hash every run) when
// neither variable is set or the folder cannot be made.
std::string user_hash_cache();

}  // namespace sdc::cli
