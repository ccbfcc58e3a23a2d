// Tiled VAE: tile placement, the blend weights and the accumulation in planar (CHW) layout, the
// whole-image GroupNorm statistics pooled over tiles, and the two network parts around them.
#include "pipeline/vae_tiling.h"

#include <algorithm>
#include <string>

#include "common/error.h"

namespace sdc::pipeline {

namespace {

// Weight of position i (of n) in a tile that has neighbours before/after it: a ramp rising over
// `ov` positions at each shared edge, 1 inside. Never 0, so every pixel has some weight.
float ramp(int i, int n, int ov, bool before, bool after) {
  float w = 1.f;
  if (before && ov > 0) w = std::min(w, (float(i) + 0.5f) / float(ov));
  if (after && ov > 0) w = std::min(w, (float(n - i) - 0.5f) / float(ov));
  return w;
}

// One axis of the grid in latent units, with its overlap, for an image side of `latent` latents.
struct Axis {
  int tile = 0, overlap = 0;
  std::vector<int> origins;
};

Axis axis(int latent, int tile_latent) {
  Axis a;
  a.tile = std::min(tile_latent, latent);
  a.overlap = a.tile == latent ? 0 : std::max(1, tile_latent / 4);
  a.origins = tile_origins(latent, a.tile, a.overlap);
  return a;
}

int tile_latent_of(int tile_px) {
  if (tile_px < 128 || tile_px > 2048 || tile_px % 64 != 0)
    throw UsageError("", "--vae-tile-size", "a multiple of 64 from 128 to 2048 (pixels)",
                     std::to_string(tile_px));
  return tile_px / 8;
}

// Blends `tiles` (a function filling one tile's output, `channels` planes of th·s × tw·s values
// for the tile at latent origin (y, x)) into a [channels, h·s, w·s] image; s = output units per
// latent (8 for the decoder, 1 for the encoder).
template <typename RunTile>
std::vector<float> blend(const Axis& ay, const Axis& ax, int channels, int s, int h, int w,
                         RunTile run_tile) {
  const size_t H = size_t(h) * size_t(s), W = size_t(w) * size_t(s);
  const int th = ay.tile * s, tw = ax.tile * s;
  std::vector<float> out(size_t(channels) * H * W, 0.f), weight(H * W, 0.f);
  std::vector<float> tile(size_t(channels) * size_t(th) * size_t(tw));
  for (size_t iy = 0; iy < ay.origins.size(); ++iy) {
    for (size_t ix = 0; ix < ax.origins.size(); ++ix) {
      const int y0 = ay.origins[iy], x0 = ax.origins[ix];
      run_tile(y0, x0, tile);
      const bool up = iy > 0, down = iy + 1 < ay.origins.size();
      const bool left = ix > 0, right = ix + 1 < ax.origins.size();
      for (int y = 0; y < th; ++y) {
        const float wy = ramp(y, th, ay.overlap * s, up, down);
        const size_t oy = size_t(y0 * s + y);
        for (int x = 0; x < tw; ++x) {
          const float wgt = wy * ramp(x, tw, ax.overlap * s, left, right);
          const size_t o = oy * W + size_t(x0 * s + x);
          weight[o] += wgt;
          for (int c = 0; c < channels; ++c)
            out[size_t(c) * H * W + o] +=
                wgt * tile[(size_t(c) * size_t(th) + size_t(y)) * size_t(tw) + size_t(x)];
        }
      }
    }
  }
  for (int c = 0; c < channels; ++c)
    for (size_t o = 0; o < H * W; ++o) out[size_t(c) * H * W + o] /= weight[o];
  return out;
}

// Copies the [channels, th, tw] window at (y0, x0) of a [channels, H, W] image.
void crop(std::span<const float> src, int channels, int H, int W, int y0, int x0, int th, int tw,
          std::vector<float>& dst) {
  dst.resize(size_t(channels) * size_t(th) * size_t(tw));
  for (int c = 0; c < channels; ++c)
    for (int y = 0; y < th; ++y)
      std::copy_n(
          src.begin() +
              std::ptrdiff_t((size_t(c) * size_t(H) + size_t(y0 + y)) * size_t(W) + size_t(x0)),
          tw, dst.begin() + std::ptrdiff_t((size_t(c) * size_t(th) + size_t(y)) * size_t(tw)));
}

// Records or replays `stats` in a cached plan for as long as it lives, and leaves the plan
// computing its own statistics again afterwards — also when a run throws, so that no plan keeps a
// pointer to statistics that are gone.
class NormStatsScope {
 public:
  NormStatsScope(cpu::Plan& plan, cpu::NormStats mode, std::vector<cpu::GroupNormStats>& stats)
      : plan_(plan) {
    plan_.set_group_norm_stats(mode, &stats);
  }
  ~NormStatsScope() { plan_.set_group_norm_stats(cpu::NormStats::Compute, nullptr); }
  NormStatsScope(const NormStatsScope&) = delete;
  NormStatsScope& operator=(const NormStatsScope&) = delete;

 private:
  cpu::Plan& plan_;
};

// The statistics of equal-sized tiles combined as if all their pixels were one set: per GroupNorm
// step and (n, group), the mean of the means, and the variance about it (mean within-tile variance
// plus the spread of the tile means; taken about the pooled mean, so no cancellation).
std::vector<cpu::GroupNormStats> pool(const std::vector<std::vector<cpu::GroupNormStats>>& tiles) {
  const double n = double(tiles.size());
  std::vector<cpu::GroupNormStats> out = tiles.front();
  for (size_t k = 0; k < out.size(); ++k)
    for (size_t i = 0; i < out[k].mean.size(); ++i) {
      double mean = 0, var = 0;
      for (const auto& t : tiles) mean += t[k].mean[i];
      mean /= n;
      for (const auto& t : tiles) {
        const double d = t[k].mean[i] - mean;
        var += t[k].var[i] + d * d;
      }
      out[k].mean[i] = mean;
      out[k].var[i] = var / n;
    }
  return out;
}

// The whole image's GroupNorm statistics for `plan`, a tile-sized plan (th x tw latents) of a
// part that runs in tiles: one Record run per tile of the fewest tiles that cover the h x w image
// (abutting; the last of a row or column shifted inwards), pooled. set_tile(y0, x0) fills the
// plan's input for the tile at that latent origin.
template <typename SetTile>
std::vector<cpu::GroupNormStats> estimate_stats(cpu::Plan& plan, int h, int w, int th, int tw,
                                                SetTile set_tile) {
  std::vector<std::vector<cpu::GroupNormStats>> tiles;
  for (int y0 : tile_origins(h, th, 0))
    for (int x0 : tile_origins(w, tw, 0)) {
      set_tile(y0, x0);
      tiles.emplace_back();
      const NormStatsScope record(plan, cpu::NormStats::Record, tiles.back());
      plan.run();
    }
  return pool(tiles);
}

// A [C, h, w] output of a plan as a planar vector.
std::vector<float> read_planar(const cpu::Plan& plan, const std::string& name) {
  const Shape s = plan.output_shape_nchw(name);
  std::vector<float> out(size_t(shape_numel(s)));
  plan.read_output_nchw(name, out.data());
  return out;
}

}  // namespace

std::vector<int> tile_origins(int size, int tile, int overlap) {
  if (tile <= 0 || tile > size || overlap < 0 || overlap >= tile)
    throw Error("VAE tiling", "tile", "0 < tile <= size, 0 <= overlap < tile",
                std::to_string(tile) + " of " + std::to_string(size) + ", overlap " +
                    std::to_string(overlap));
  std::vector<int> o;
  for (int p = 0; p + tile < size; p += tile - overlap) o.push_back(p);
  o.push_back(size - tile);
  return o;
}

std::vector<float> tiled_vae_decode(PlanCache& plans, std::span<const float> latents, int h, int w,
                                    int tile_px) {
  const int t = tile_latent_of(tile_px);
  if (latents.size() != size_t(4) * size_t(h) * size_t(w))
    throw Error("VAE tiling", "latents", "4 x " + std::to_string(h) + " x " + std::to_string(w),
                std::to_string(latents.size()) + " values");
  const Axis ay = axis(h, t), ax = axis(w, t);
  if (ay.origins.size() * ax.origins.size() == 1) {  // one tile: the untiled decode
    cpu::Plan& dec = plans.vae_decoder(1, h, w);
    dec.set_input_nchw("latent", latents.data());
    dec.run();
    return read_planar(dec, "image");
  }
  // The latent-resolution head once over the whole latent, exactly as untiled.
  cpu::Plan& head = plans.vae_decoder(1, h, w, graph::VaePart::Head);
  head.set_input_nchw("latent", latents.data());
  head.run();
  const std::vector<float> features = read_planar(head, "features");
  const int C = int(features.size() / (size_t(h) * size_t(w)));
  // The tail in tiles, normalised with the whole image's statistics.
  cpu::Plan& tail = plans.vae_decoder(1, ay.tile, ax.tile, graph::VaePart::Tail);
  std::vector<float> window;
  auto set_tile = [&](int y0, int x0) {
    crop(features, C, h, w, y0, x0, ay.tile, ax.tile, window);
    tail.set_input_nchw("features", window.data());
  };
  std::vector<cpu::GroupNormStats> stats = estimate_stats(tail, h, w, ay.tile, ax.tile, set_tile);
  const NormStatsScope replay(tail, cpu::NormStats::Replay, stats);
  return blend(ay, ax, 3, 8, h, w, [&](int y0, int x0, std::vector<float>& tile) {
    set_tile(y0, x0);
    tail.run();
    tail.read_output_nchw("image", tile.data());
  });
}

void tiled_vae_encode(PlanCache& plans, std::span<const float> image, int h, int w, int tile_px,
                      std::vector<float>& mean, std::vector<float>& logvar) {
  const int t = tile_latent_of(tile_px);
  if (image.size() != size_t(3) * 64 * size_t(h) * size_t(w))
    throw Error("VAE tiling", "image",
                "3 x " + std::to_string(8 * h) + " x " + std::to_string(8 * w),
                std::to_string(image.size()) + " values");
  const Axis ay = axis(h, t), ax = axis(w, t);
  cpu::Plan* enc = nullptr;
  if (ay.origins.size() * ax.origins.size() == 1) {  // one tile: the untiled encode
    enc = &plans.vae_encoder(1, h, w);
    enc->set_input_nchw("image", image.data());
  } else {
    // The head in tiles, normalised with the whole image's statistics, blended at latent
    // resolution; then the tail once over the whole latent.
    cpu::Plan& head = plans.vae_encoder(1, ay.tile, ax.tile, graph::VaePart::Head);
    std::vector<float> window;
    auto set_tile = [&](int y0, int x0) {
      crop(image, 3, 8 * h, 8 * w, 8 * y0, 8 * x0, 8 * ay.tile, 8 * ax.tile, window);
      head.set_input_nchw("image", window.data());
    };
    std::vector<cpu::GroupNormStats> stats = estimate_stats(head, h, w, ay.tile, ax.tile, set_tile);
    const int C = int(head.output_shape_nchw("features")[1]);
    std::vector<float> features;
    {
      const NormStatsScope replay(head, cpu::NormStats::Replay, stats);
      features = blend(ay, ax, C, 1, h, w, [&](int y0, int x0, std::vector<float>& tile) {
        set_tile(y0, x0);
        head.run();
        head.read_output_nchw("features", tile.data());
      });
    }
    enc = &plans.vae_encoder(1, h, w, graph::VaePart::Tail);
    enc->set_input_nchw("features", features.data());
  }
  enc->run();
  mean = read_planar(*enc, "mean");
  logvar = read_planar(*enc, "logvar");
}

}  // namespace sdc::pipeline
