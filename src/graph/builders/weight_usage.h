// Which weights of a component a set of graphs consumes: every tensor under a prefix of the
// WeightMap should be a Weight node of exactly one graph, exactly once. A diagnostic for builders
// (a forgotten layer or a misspelled name shows up here) and for loaders (stray tensors).
#pragma once

#include <string>
#include <vector>

#include "common/tensor.h"
#include "graph/graph.h"

namespace sdc::graph {

struct WeightUsage {
  std::vector<std::string> unused;      // in the map under the prefix, in no graph
  std::vector<std::string> duplicated;  // Weight nodes of the same name more than once
  std::vector<std::string> foreign;     // Weight nodes not in the map, or not its bytes
  size_t used = 0;                      // distinct names consumed

  bool ok() const { return unused.empty() && duplicated.empty() && foreign.empty(); }
  // One line per problem ("unused: NAME"), at most `limit` lines per kind plus a count.
  std::string report(size_t limit = 20) const;
};

WeightUsage weight_usage(const std::vector<const Graph*>& graphs, const WeightMap& weights,
                         const std::string& prefix);

}  // namespace sdc::graph
