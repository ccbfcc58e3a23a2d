// Tiled VAE: tile placement, the blend weights and the accumulation in planar (CHW) layout.
#include "pipeline/vae_tiling.h"

#include <algorithm>

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
  cpu::Plan& dec = plans.vae_decoder(1, ay.tile, ax.tile);
  std::vector<float> window;
  return blend(ay, ax, 3, 8, h, w, [&](int y0, int x0, std::vector<float>& tile) {
    crop(latents, 4, h, w, y0, x0, ay.tile, ax.tile, window);
    dec.set_input_nchw("latent", window.data());
    dec.run();
    dec.read_output_nchw("image", tile.data());
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
  cpu::Plan& enc = plans.vae_encoder(1, ay.tile, ax.tile);
  std::vector<float> window;
  // One encoder run per tile gives both outputs: blend them together as 8 planes.
  const size_t plane = size_t(ay.tile) * size_t(ax.tile);
  const std::vector<float> both =
      blend(ay, ax, 8, 1, h, w, [&](int y0, int x0, std::vector<float>& tile) {
        crop(image, 3, 8 * h, 8 * w, 8 * y0, 8 * x0, 8 * ay.tile, 8 * ax.tile, window);
        enc.set_input_nchw("image", window.data());
        enc.run();
        enc.read_output_nchw("mean", tile.data());
        enc.read_output_nchw("logvar", tile.data() + 4 * plane);
      });
  const size_t half = 4 * size_t(h) * size_t(w);
  mean.assign(both.begin(), both.begin() + std::ptrdiff_t(half));
  logvar.assign(both.begin() + std::ptrdiff_t(half), both.end());
}

}  // namespace sdc::pipeline
