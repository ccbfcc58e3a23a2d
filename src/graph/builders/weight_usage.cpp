// Weight-usage accounting over graphs.
#include "graph/builders/weight_usage.h"

#include <map>

namespace sdc::graph {

std::string WeightUsage::report(size_t limit) const {
  std::string out;
  auto list = [&](const char* kind, const std::vector<std::string>& names) {
    for (size_t i = 0; i < names.size() && i < limit; ++i)
      out += std::string(kind) + ": " + names[i] + "\n";
    if (names.size() > limit)
      out += std::string(kind) + ": ... " + std::to_string(names.size() - limit) + " more\n";
  };
  list("unused", unused);
  list("duplicated", duplicated);
  list("foreign", foreign);
  return out;
}

WeightUsage weight_usage(const std::vector<const Graph*>& graphs, const WeightMap& weights,
                         const std::string& prefix) {
  WeightUsage u;
  std::map<std::string, int> count;
  for (const Graph* g : graphs)
    for (const Node& n : g->nodes()) {
      if (n.op != Op::Weight) continue;
      const TensorRef* t = weights.find(n.name);
      if (!t || t->data != n.weight.data || t->nbytes != n.weight.nbytes) {
        u.foreign.push_back(n.name);
        continue;
      }
      if (++count[n.name] == 2) u.duplicated.push_back(n.name);
    }
  for (const std::string& name : weights.names_with_prefix(prefix))
    if (!count.count(name)) u.unused.push_back(name);
  u.used = count.size();
  return u;
}

}  // namespace sdc::graph
