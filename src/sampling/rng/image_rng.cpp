// A1111's per-image random streams; see image_rng.h.

#include "sampling/rng/image_rng.h"

#include <cctype>

#include "common/error.h"

namespace sdc::sampling {

RngSource parse_rng_source(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "cpu") return RngSource::kCpu;
  if (lower == "nv") return RngSource::kNv;
  throw UsageError("", "--rng", "cpu or nv (A1111's CPU / NV)", std::string(name));
}

const char* rng_infotext_name(RngSource source) {
  return source == RngSource::kNv ? "NV" : "CPU";
}

const char* rng_cli_name(RngSource source) {
  return source == RngSource::kNv ? "nv" : "cpu";
}

GeneratorFactory generators_for(RngSource source) {
  return source == RngSource::kNv ? philox_generators() : torch_cpu_generators();
}

namespace {
VariationSeeds plain_seeds(const std::vector<uint64_t>& seeds) {
  VariationSeeds v;
  for (uint64_t s : seeds) v.seeds.push_back(int64_t(s));
  return v;
}
std::vector<uint64_t> image_seeds(const VariationSeeds& v) {
  std::vector<uint64_t> out;
  for (int64_t s : v.seeds) out.push_back(uint64_t(s));
  return out;
}
}  // namespace

ImageRng::ImageRng(RngSource source, std::vector<uint64_t> seeds, size_t per_image, uint64_t ensd)
    : ImageRng(source, plain_seeds(seeds), 1, 1, int(per_image), ensd) {}

ImageRng::ImageRng(RngSource source, const VariationSeeds& seeds, int channels, int height,
                   int width, uint64_t ensd)
    : source_(source),
      seeds_(image_seeds(seeds)),
      c_(channels),
      h_(height),
      w_(width),
      ensd_(ensd),
      noise_(std::make_unique<VariationNoise>(channels, height, width, seeds,
                                              generators_for(source))) {}

std::vector<float> ImageRng::first() {
  std::vector<float> out = noise_->first();
  if (ensd_ != 0) {  // A1111: later draws come from generators seeded with seed + ENSD
    std::vector<uint64_t> shifted;
    for (uint64_t s : seeds_) shifted.push_back(s + ensd_);
    noise_ =
        std::make_unique<VariationNoise>(c_, h_, w_, plain_seeds(shifted), generators_for(source_));
  }
  return out;
}

void ImageRng::next(std::span<float> out) {
  if (out.size() != noise_->batch() * noise_->per_image())
    throw Error("", "image RNG draw",
                std::to_string(noise_->batch() * noise_->per_image()) + " values",
                std::to_string(out.size()));
  noise_->next(out);
}

SeededRandn ImageRng::seeded_randn() const {
  if (source_ == RngSource::kNv)
    return [](uint64_t seed, std::span<float> out) {
      PhiloxGenerator(seed).randn(out.data(), out.size());
    };
  return [](uint64_t seed, std::span<float> out) {
    TorchGenerator(seed).randn(out.data(), out.size());
  };
}

}  // namespace sdc::sampling
