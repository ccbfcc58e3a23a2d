// The UNet's and the VAE decoder's int8 layer policies (see int8_layers.h).
#include "graph/builders/int8_layers.h"

#include <array>
#include <string_view>

namespace sdc::graph {

namespace {
bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}
bool starts_with(std::string_view s, std::string_view head) {
  return s.substr(0, head.size()) == head;
}
}  // namespace

bool keeps_float_in_int8(const std::string& layer) {
  constexpr std::array<std::string_view, 3> kFloatTails = {".emb_layers.1", ".attn2.to_k",
                                                           ".attn2.to_v"};
  if (layer == "input_blocks.0.0" || layer == "out.2" || starts_with(layer, "time_embed."))
    return true;
  for (std::string_view t : kFloatTails)
    if (ends_with(layer, t)) return true;
  return starts_with(layer, "input_hint_block") || starts_with(layer, "zero_convs") ||
         starts_with(layer, "middle_block_out");
}

void mark_int8_layers(Graph& g) {
  const std::vector<Node>& nodes = g.nodes();
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node& n = nodes[i];
    if ((n.op == Op::Conv2d || n.op == Op::Linear) && !keeps_float_in_int8(n.name))
      g.allow_int8(ValueId(i));
    // Self-attention only: cross-attention's 77 keys are too few for int8 to pay.
    if (n.op == Op::Attention && ends_with(n.name, ".attn1")) g.allow_int8(ValueId(i));
  }
}

void mark_vae_decoder_int8_layers(Graph& g) {
  const std::vector<Node>& nodes = g.nodes();
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node& n = nodes[i];
    // The mid block's attention (one head of 512 over every latent pixel): int8 QK^T and PV.
    if (n.op == Op::Attention && starts_with(n.name, "decoder.")) g.allow_int8(ValueId(i));
    if (n.op != Op::Conv2d && n.op != Op::Linear) continue;
    const bool resnet =
        n.name.find(".block.") != std::string::npos || n.name.find(".block_") != std::string::npos;
    const bool upsample = ends_with(n.name, ".upsample.conv");
    if ((resnet || upsample) && starts_with(n.name, "decoder.")) g.allow_int8(ValueId(i));
  }
}

}  // namespace sdc::graph
