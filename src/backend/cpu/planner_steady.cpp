// The planner's steady steps: those that depend on steady inputs alone (graph::Attrs::steady:
// the UNet's prompt context, a ControlNet's hint), which run() runs only when such an input
// changed, and the outputs of theirs that other steps read, which live in the plan's own memory
// (Store::Held) so that nothing else overwrites them between runs.
#include <set>

#include "backend/cpu/memory_plan.h"
#include "backend/cpu/planner.h"

namespace sdc::cpu::detail {

namespace {
// What a value depends on: steady inputs (a bit each) and whether any other input.
struct Depends {
  uint64_t steady = 0;
  bool other = false;
  Depends& operator|=(const Depends& d) {
    steady |= d.steady;
    other |= d.other;
    return *this;
  }
};
}  // namespace

void Planner::hold_steady_values() {
  std::vector<Depends> of_store(stores_.size());
  for (size_t i = 0; i < stores_.size(); ++i) {
    const Store& x = stores_[i];
    if (x.kind != Store::Input) continue;
    const Node& n = node(g_.inputs().at(size_t(x.input)).second);
    if (n.attrs.steady && plan_.steady_.size() < 64) {
      of_store[i].steady = uint64_t(1) << plan_.steady_.size();
      CpuPlan::SteadyInput in;
      in.input = x.input;
      in.last.resize(x.bytes);  // sized here: run() allocates nothing
      plan_.steady_.push_back(std::move(in));
    } else {
      of_store[i].other = true;
    }
  }
  if (plan_.steady_.empty()) return;

  // Each step's dependencies, in run order, from the stores it reads.
  auto reads = [](const Spec& s) {
    std::vector<int> r(s.in.begin(), s.in.end());
    for (const PostOp& p : s.post) r.push_back(p.store);
    if (s.reuses_codes) r.push_back(s.shared_codes);
    return r;
  };
  auto writes = [](const Spec& s) {
    std::vector<int> w = {s.out, s.codes_out, s.reuses_codes ? -1 : s.shared_codes};
    return w;
  };
  std::vector<std::vector<size_t>> readers(stores_.size());
  for (size_t i = 0; i < specs_.size(); ++i) {
    Depends d;
    for (int st : reads(specs_[i]))
      if (st >= 0) {
        d |= of_store[size_t(find(st))];
        readers[size_t(find(st))].push_back(i);
      }
    for (int st : writes(specs_[i]))
      if (st >= 0) of_store[size_t(find(st))] = d;
    // GroupNorm steps share their statistics with the caller on every run (VAE tiling): they
    // run every time, and what reads them alone still runs only with its steady inputs.
    if (!d.other && d.steady != 0 && specs_[i].kind != SK::GroupNorm)
      specs_[i].steady_needs = d.steady;
  }

  // The steady outputs that outlive their own steps' run: read by a step that runs when they
  // do not, or by the caller.
  const std::set<int> outputs = output_stores();
  size_t held = 0;
  for (const Spec& s : specs_) {
    if (s.steady_needs == 0) continue;
    for (int w : writes(s)) {
      if (w < 0) continue;
      Store& x = stores_[size_t(find(w))];
      if (x.kind != Store::Arena) continue;
      bool outlives = outputs.count(find(w)) > 0;
      for (size_t r : readers[size_t(find(w))])
        outlives |= specs_[r].steady_needs != s.steady_needs;
      if (!outlives) continue;
      x.kind = Store::Held;
      x.held_offset = held;
      held += arena_aligned(x.bytes);
    }
  }
  if (held > 0) plan_.held_ = std::make_unique<PackedWeight>(held);
}

}  // namespace sdc::cpu::detail
