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

ImageRng::ImageRng(RngSource source, std::vector<uint64_t> seeds, size_t per_image, uint64_t ensd)
    : source_(source), seeds_(std::move(seeds)), per_image_(per_image), ensd_(ensd) {
  reseed(0);
}

void ImageRng::reseed(uint64_t delta) {
  cpu_.clear();
  nv_.clear();
  for (uint64_t s : seeds_) {
    if (source_ == RngSource::kNv)
      nv_.emplace_back(s + delta);
    else
      cpu_.emplace_back(s + delta);
  }
}

std::vector<float> ImageRng::first() {
  std::vector<float> out(seeds_.size() * per_image_);
  next(out);
  if (ensd_ != 0) reseed(ensd_);
  return out;
}

void ImageRng::next(std::span<float> out) {
  if (out.size() != seeds_.size() * per_image_)
    throw Error("", "image RNG draw", std::to_string(seeds_.size() * per_image_) + " values",
                std::to_string(out.size()));
  for (size_t b = 0; b < seeds_.size(); ++b) {
    float* dst = out.data() + b * per_image_;
    if (source_ == RngSource::kNv)
      nv_[b].randn(dst, per_image_);
    else
      cpu_[b].randn(dst, per_image_);
  }
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
