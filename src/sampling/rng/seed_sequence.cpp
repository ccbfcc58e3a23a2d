// numpy's SeedSequence hashing; see seed_sequence.h.

#include "sampling/rng/seed_sequence.h"

#include <string>

#include "common/error.h"

namespace sdc::sampling {
namespace {

constexpr uint32_t kInitA = 0x43b0d7e5u, kMultA = 0x931e8875u;
constexpr uint32_t kInitB = 0x8b51f9ddu, kMultB = 0x58f38dedu;
constexpr uint32_t kMixMultL = 0xca01f9ddu, kMixMultR = 0x4973f715u;
constexpr int kXShift = 16;

uint32_t hashmix(uint32_t value, uint32_t& hash_const) {
  value ^= hash_const;
  hash_const *= kMultA;
  value *= hash_const;
  value ^= value >> kXShift;
  return value;
}

uint32_t mix(uint32_t x, uint32_t y) {
  uint32_t result = kMixMultL * x - kMixMultR * y;
  result ^= result >> kXShift;
  return result;
}

// An integer as little-endian 32-bit words; 0 is one word.
void append_words(uint64_t n, std::vector<uint32_t>& out) {
  if (n == 0) out.push_back(0);
  while (n > 0) {
    out.push_back(static_cast<uint32_t>(n & 0xffffffffu));
    n >>= 32;
  }
}

}  // namespace

SeedSequence::SeedSequence(uint64_t entropy, const std::vector<uint64_t>& spawn_key,
                           int pool_size) {
  if (pool_size < 4)
    throw Error("", "SeedSequence pool_size", "at least 4", std::to_string(pool_size));
  std::vector<uint32_t> words;
  append_words(entropy, words);
  std::vector<uint32_t> spawn;
  for (uint64_t k : spawn_key) append_words(k, spawn);
  // With a spawn key, the run entropy is zero-padded to the pool size first.
  if (!spawn.empty() && words.size() < static_cast<size_t>(pool_size)) words.resize(pool_size, 0u);
  words.insert(words.end(), spawn.begin(), spawn.end());

  pool_.assign(static_cast<size_t>(pool_size), 0u);
  uint32_t hash_const = kInitA;
  for (size_t i = 0; i < pool_.size(); ++i)
    pool_[i] = hashmix(i < words.size() ? words[i] : 0u, hash_const);
  for (size_t src = 0; src < pool_.size(); ++src)
    for (size_t dst = 0; dst < pool_.size(); ++dst)
      if (src != dst) pool_[dst] = mix(pool_[dst], hashmix(pool_[src], hash_const));
  for (size_t src = pool_.size(); src < words.size(); ++src)
    for (size_t dst = 0; dst < pool_.size(); ++dst)
      pool_[dst] = mix(pool_[dst], hashmix(words[src], hash_const));
}

std::vector<uint32_t> SeedSequence::generate_state(int n_words) const {
  std::vector<uint32_t> state(static_cast<size_t>(n_words));
  uint32_t hash_const = kInitB;
  for (size_t i = 0; i < state.size(); ++i) {
    uint32_t v = pool_[i % pool_.size()];
    v ^= hash_const;
    hash_const *= kMultB;
    v *= hash_const;
    v ^= v >> kXShift;
    state[i] = v;
  }
  return state;
}

}  // namespace sdc::sampling
