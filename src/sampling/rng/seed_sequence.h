// numpy.random.SeedSequence (numpy >= 1.17), the part torchsde uses to seed its Brownian tree:
// entropy and spawn key are turned into 32-bit words, mixed into a pool of `pool_size` words by
// the documented hash (hashmix/mix with the constants of numpy's bit_generator.pyx), and
// generate_state(n) hashes the pool, cycled, into n output words.
#pragma once

#include <cstdint>
#include <vector>

namespace sdc::sampling {

class SeedSequence {
 public:
  // entropy: a non-negative integer (here up to 64 bits); spawn_key: non-negative integers.
  SeedSequence(uint64_t entropy, const std::vector<uint64_t>& spawn_key, int pool_size = 4);

  std::vector<uint32_t> generate_state(int n_words) const;
  const std::vector<uint32_t>& pool() const { return pool_; }

 private:
  std::vector<uint32_t> pool_;
};

}  // namespace sdc::sampling
