// Activation memory across and within plans: the shared ActivationArena (growth keeps the base and
// the contents, refusal past the reservation), plans compiled against one arena computing exactly
// what plans with their own arenas compute, norms written in place over a dying input, and a
// ResNet's shortcut running before norm1 so that the wide input dies early; the huge-page-aligned
// mappings both the arena and large packed weights use; populating committed pages ahead of use
// (ArenaPrefault) without changing what plans already wrote.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "backend/cpu/activation_arena.h"
#include "backend/cpu/arena_prefault.h"
#include "backend/cpu/plan.h"
#include "common/error.h"
#include "common/fixtures.h"
#include "common/huge_pages.h"
#include "reference.h"

namespace sdc::test {
namespace {

using cpu::ActivationArena;
using cpu::Plan;
using cpu::PlanOptions;
using graph::ValueId;
using sdc::kHugePageBytes;
using sdc::map_anonymous;
using sdc::map_file_read_only;
using sdc::round_to_pages;

TEST(ActivationArena, GrowsInPlaceKeepingContents) {
  ActivationArena arena(size_t(1) << 30);
  ASSERT_GE(arena.reserved(), size_t(64) << 20);
  auto* a = static_cast<uint8_t*>(arena.acquire(1000));
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 64, 0u);
  std::memset(a, 0x5a, 1000);
  auto* b = static_cast<uint8_t*>(arena.acquire(8 << 20));
  EXPECT_EQ(a, b) << "the base never moves";
  EXPECT_EQ(a[999], 0x5a) << "growing keeps what was written";
  b[(8 << 20) - 1] = 1;  // the whole block is writable
  EXPECT_GE(arena.committed(), size_t(8) << 20);
  EXPECT_EQ(arena.acquire(10), a);
  EXPECT_GE(arena.committed(), size_t(8) << 20) << "a smaller plan does not shrink it";
}

TEST(ActivationArena, BaseIsHugePageAlignedAndCommitsWholeHugePages) {
  ActivationArena arena(size_t(1) << 30);
  auto* a = static_cast<uint8_t*>(arena.acquire(3 << 20));
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % kHugePageBytes, 0u);
  EXPECT_EQ(arena.committed(), size_t(4) << 20);
  a[(4 << 20) - 1] = 7;  // the rounded-up tail is writable too
}

// How many of the `bytes` from `p` (page-aligned) are resident.
size_t resident_bytes(const void* p, size_t bytes) {
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> in((bytes + page - 1) / page);
  if (mincore(const_cast<void*>(p), bytes, in.data()) != 0) return 0;
  size_t n = 0;
  for (unsigned char c : in) n += (c & 1) ? page : 0;
  return n;
}

TEST(ActivationArena, PopulateMakesCommittedPagesResidentKeepingContents) {
  ActivationArena arena(size_t(1) << 30);
  auto* a = static_cast<uint8_t*>(arena.acquire(size_t(8) << 20));
  ASSERT_NE(a, nullptr);
  a[0] = 0x11;  // what a plan wrote before the prefault reached its pages
  a[(5 << 20) + 3] = 0x22;
  const size_t first = arena.populate(size_t(2) << 20);
  EXPECT_EQ(first, size_t(2) << 20) << "one chunk at a time";
  size_t total = first;
  while (const size_t n = arena.populate(size_t(2) << 20)) total += n;
  EXPECT_EQ(total, arena.committed()) << "every committed page, once";
  EXPECT_EQ(resident_bytes(a, arena.committed()), arena.committed());
  EXPECT_EQ(a[0], 0x11) << "populating writes nothing";
  EXPECT_EQ(a[(5 << 20) + 3], 0x22);
  EXPECT_EQ(a[1], 0) << "and new pages read as zero";

  arena.acquire(size_t(12) << 20);  // a larger plan: only its new pages are left to do
  EXPECT_EQ(arena.populate(size_t(64) << 20), arena.committed() - total);
  EXPECT_EQ(arena.populate(size_t(64) << 20), 0u);
  EXPECT_EQ(a[0], 0x11);
}

TEST(ArenaPrefault, FollowsTheArenasAsPlansGrowThemAndStopsWhenDestroyed) {
  auto arena = std::make_shared<ActivationArena>(size_t(1) << 30);
  auto scratch = std::make_shared<ActivationArena>(size_t(1) << 30);
  // Waits (up to 10 s: a loaded CI machine) for the background thread to reach `bytes`.
  auto wait_for = [](const cpu::ArenaPrefault& p, size_t bytes) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (p.populated_bytes() < bytes && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return p.populated_bytes();
  };
  auto* a = static_cast<uint8_t*>(arena->acquire(size_t(6) << 20));
  a[100] = 9;
  {
    cpu::ArenaPrefault prefault({arena, nullptr, scratch});  // null entries are skipped
    EXPECT_EQ(wait_for(prefault, arena->committed()), arena->committed());
    // Plans compiled while it runs grow the arenas; it follows.
    arena->acquire(size_t(20) << 20);
    scratch->acquire(size_t(3) << 20);
    const size_t all = arena->committed() + scratch->committed();
    EXPECT_EQ(wait_for(prefault, all), all);
    EXPECT_EQ(resident_bytes(a, arena->committed()), arena->committed());
    EXPECT_EQ(a[100], 9);
  }
  // Stopped: a later commit stays untouched until used.
  arena->acquire(size_t(40) << 20);
  EXPECT_LT(resident_bytes(a, arena->committed()), arena->committed());
}

TEST(HugePages, LargeMappingsAreAlignedWritableAndUnmapWhole) {
  for (size_t bytes : {size_t(4096), size_t(1) << 20, (size_t(2) << 20) + 1, size_t(9) << 20}) {
    size_t mapped = 0;
    void* p = map_anonymous(bytes, PROT_READ | PROT_WRITE, 0, &mapped);
    ASSERT_NE(p, MAP_FAILED) << bytes;
    EXPECT_GE(mapped, bytes);
    EXPECT_EQ(mapped % 4096, 0u);
    if (bytes >= kHugePageBytes) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kHugePageBytes, 0u) << bytes;
    }
    std::memset(p, 0x33, bytes);
    EXPECT_EQ(static_cast<uint8_t*>(p)[bytes - 1], 0x33);
    EXPECT_EQ(munmap(p, mapped), 0) << bytes;
  }
}

// The VmFlags of the mapping holding `p` (/proc/self/smaps: "hg" = advised MADV_HUGEPAGE).
std::string vm_flags(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const auto at = reinterpret_cast<uintptr_t>(p);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    unsigned long begin = 0, end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &begin, &end) == 2 &&
        line.find(':') > line.find(' ')) {  // a mapping's header, not "Key: value"
      inside = at >= begin && at < end;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line.substr(8) + " ";
    }
  }
  return "";
}

TEST(HugePages, AnonymousMappingsAreAdvisedAsDecidedFileMappingsAlways) {
  // Anonymous memory is advised where the probe found a fresh huge page cheaper than its 512
  // small ones (huge_pages.h: hosts differ); file mappings always are (their pages are the page
  // cache's).
  const HugePagePolicy& policy = anonymous_huge_pages();
  EXPECT_FALSE(policy.reason.empty());
  size_t mapped = 0;
  void* a = map_anonymous(size_t(8) << 20, PROT_READ | PROT_WRITE, 0, &mapped);
  ASSERT_NE(a, MAP_FAILED);
  const std::string anon = vm_flags(a);
  ASSERT_FALSE(anon.empty()) << "no smaps entry for the mapping";
  EXPECT_EQ(anon.find(" hg ") != std::string::npos, policy.advise) << anon << policy.reason;
  EXPECT_EQ(munmap(a, mapped), 0);

  if (access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) != 0)
    GTEST_SKIP() << "no transparent huge pages in this kernel: nothing to advise";
  TempDir dir;
  const int fd = open(dir.file("mapped").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  const size_t bytes = size_t(4) << 20;
  ASSERT_EQ(ftruncate(fd, off_t(bytes)), 0);
  void* f = map_file_read_only(fd, bytes);
  close(fd);
  ASSERT_NE(f, MAP_FAILED);
  EXPECT_NE(vm_flags(f).find(" hg "), std::string::npos) << vm_flags(f);
  EXPECT_EQ(munmap(f, round_to_pages(bytes)), 0);
}

TEST(HugePages, TheProbesRuleWeighsOneHugePageAgainstItsSmallPages) {
  // The two VMs of huge_pages.h, host-reclaimed memory: guest faults that trap to the hypervisor
  // (~10 us a 4 KiB page) against a 2 MiB region's ~3.4 ms, and cheap guest faults (~1.4 us)
  // against ~4.4 ms; a huge page cleared at memory speed wins on either.
  EXPECT_TRUE(huge_pages_pay_off(3400, 10.3));
  EXPECT_FALSE(huge_pages_pay_off(4400, 1.4));
  EXPECT_TRUE(huge_pages_pay_off(150, 1.4));
  // A kernel that fell back to small pages for the advised region: no gain, no advice.
  EXPECT_FALSE(huge_pages_pay_off(512 * 1.4, 1.4));
}

TEST(HugePages, SettingsForceOrProbeAndAnythingElseIsRefused) {
  EXPECT_TRUE(huge_page_policy("advise").advise);
  EXPECT_FALSE(huge_page_policy("system").advise);
  for (const std::string probe : {"", "auto"}) {
    const HugePagePolicy p = huge_page_policy(probe);
    const std::string mode = [] {
      std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
      std::string line;
      std::getline(in, line);
      return line;
    }();
    if (mode.find("[madvise]") == std::string::npos) {
      EXPECT_FALSE(p.advise) << p.reason;  // "always" gives huge pages anyway, "never" none
    } else if (p.reason.find("could not be mapped or advised") == std::string::npos) {
      // (A process with THP disabled by prctl refuses the advice: then nothing is advised.)
      EXPECT_NE(p.reason.find("a fresh 2 MiB region took"), std::string::npos) << p.reason;
      EXPECT_EQ(p.reason.rfind(p.advise ? "advised" : "not advised", 0), 0u) << p.reason;
    } else {
      EXPECT_FALSE(p.advise) << p.reason;
    }
  }
  try {
    huge_page_policy("yes");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "SDC_HUGE_PAGES: expected auto, advise or system, found \"yes\"");
  }
}

TEST(ActivationArena, RefusesBeyondItsReservation) {
  ActivationArena arena(size_t(64) << 20);
  EXPECT_NE(arena.acquire(size_t(64) << 20), nullptr);
  EXPECT_EQ(arena.acquire((size_t(64) << 20) + 1), nullptr);
}

// x -> conv3x3 -> relu -> out: one conv plan of the given spatial size.
graph::Graph conv_net(int64_t H, int64_t W) {
  graph::Graph g;
  const int64_t C = 8;
  const ValueId x = g.input("x", {1, H, W, C});
  const ValueId w = add_weight(g, "w", random_vec(C * C * 9, 11, -0.3f, 0.3f), {C, C, 3, 3});
  const ValueId b = add_weight(g, "b", random_vec(C, 12), {C});
  const ValueId h = g.conv2d(g.conv2d(x, w, b, 1, 1), w, b, 1, 1);
  g.output("out", g.relu(h));
  return g;
}

TEST(ActivationArena, PlansSharingItComputeWhatPrivatePlansCompute) {
  PlanOptions shared;
  shared.arena = std::make_shared<ActivationArena>(size_t(64) << 20);
  shared.scratch = std::make_shared<ActivationArena>(size_t(64) << 20);
  shared.check = true;
  PlanOptions own;
  own.check = true;
  const graph::Graph small = conv_net(9, 7), large = conv_net(20, 16);
  auto s1 = Plan::compile(small, shared), s2 = Plan::compile(large, shared);
  auto p1 = Plan::compile(small, own), p2 = Plan::compile(large, own);
  const Vec x1 = random_vec(9 * 7 * 8, 1), x2 = random_vec(20 * 16 * 8, 2);
  for (Plan* p : {s1.get(), p1.get()}) fill_input(*p, "x", x1);
  for (Plan* p : {s2.get(), p2.get()}) fill_input(*p, "x", x2);
  p1->run();
  p2->run();
  // Alternating runs: each overwrites the other's activations, never its inputs.
  for (int round = 0; round < 2; ++round) {
    s1->run();
    const size_t n1 = size_t(shape_numel(s1->output_shape("out")));
    EXPECT_EQ(std::memcmp(s1->output("out"), p1->output("out"), n1 * 4), 0);
    s2->run();
    const size_t n2 = size_t(shape_numel(s2->output_shape("out")));
    EXPECT_EQ(std::memcmp(s2->output("out"), p2->output("out"), n2 * 4), 0);
  }
  // Both plans' activations lie in the one arena, which is as large as the larger plan's.
  auto* base = static_cast<const uint8_t*>(shared.arena->acquire(0));
  for (Plan* p : {s1.get(), s2.get()}) {
    const auto* out = reinterpret_cast<const uint8_t*>(p->output("out"));
    EXPECT_GE(out, base);
    EXPECT_LT(out, base + shared.arena->committed());
  }
  EXPECT_GE(shared.arena->committed(), std::max(s1->arena_bytes(), s2->arena_bytes()));
  // Not the sum: the larger plan's bytes, committed in whole huge pages.
  const size_t larger = std::max(s1->arena_bytes(), s2->arena_bytes());
  EXPECT_LE(shared.arena->committed(),
            (larger + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes);
  EXPECT_EQ(s2->arena_bytes(), p2->arena_bytes()) << "each plan reports what it needs";
}

// A VAE-style ResNet with a 1x1 shortcut, built shortcut first:
// skip = linear(x); h = conv(silu(gn(x))); h = conv(silu(gn(h))) + skip.
graph::Graph resnet_net(int64_t H, int64_t W, int64_t Ci, int64_t Co) {
  graph::Graph g;
  uint32_t seed = 40;
  auto weight = [&](Shape s) {
    return add_weight(g, "w", random_vec(shape_numel(s), seed++, -0.2f, 0.2f), s);
  };
  const ValueId x = g.input("x", {1, H, W, Ci});
  const ValueId xc = g.conv2d(x, weight({Ci, Ci, 3, 3}), weight({Ci}), 1, 1);  // dies in the block
  const ValueId skip = g.linear(xc, weight({Co, Ci}), weight({Co}));
  ValueId h = g.group_norm(xc, weight({Ci}), weight({Ci}), 4, 1e-6f, true);
  h = g.conv2d(h, weight({Co, Ci, 3, 3}), weight({Co}), 1, 1);
  h = g.group_norm(h, weight({Co}), weight({Co}), 4, 1e-6f, true);
  h = g.conv2d(h, weight({Co, Co, 3, 3}), weight({Co}), 1, 1);
  g.output("out", g.add(skip, h));
  return g;
}

TEST(PlannerMemory, ResNetShortcutFirstAndNormsInPlace) {
  const int64_t H = 16, W = 12, Ci = 16, Co = 8;
  const graph::Graph g = resnet_net(H, W, Ci, Co);
  PlanOptions o;
  o.check = true;  // no two live values share bytes; dead buffers poisoned
  auto plan = Plan::compile(g, o);
  std::vector<std::string> kinds;
  for (const auto& s : plan->steps()) kinds.push_back(s.kind);
  // The shortcut runs where it stands (before norm1), conv2 absorbs the residual add.
  const std::vector<std::string> want = {"Conv2d", "Linear",         "GroupNorm+silu",
                                         "Conv2d", "GroupNorm+silu", "Conv2d+sum"};
  EXPECT_EQ(kinds, want);
  // Peak: norm1's output over the conv input it replaces (Ci) + the shortcut (Co) + conv1's
  // output (Co) — not Ci twice, as when norm1 wrote beside its dying input.
  const size_t px = size_t(H * W) * 4;
  EXPECT_LE(plan->arena_bytes(), px * size_t(Ci + 2 * Co) + 4096);
  const Vec x = random_vec(H * W * Ci, 7);
  fill_input(*plan, "x", x);
  plan->run();
  const std::vector<Vec> ref = reference_run(g, {{"x", x}});
  EXPECT_LT(rel_err(plan->output("out"), ref[0]), 1e-4);
}

}  // namespace
}  // namespace sdc::test
