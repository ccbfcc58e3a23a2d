// CLIP text encoder graph: token + position embeddings, pre-LN transformer layers with a causal
// mask, final LayerNorm.
#include "graph/builders/text_encoder.h"

#include <string>

#include "common/error.h"
#include "graph/builders/weight_source.h"

namespace sdc::graph {

namespace {

void check(const model::TextEncoderParams& p, int batch) {
  if (batch <= 0 || p.hidden <= 0 || p.heads <= 0 || p.hidden % p.heads != 0 || p.layers <= 0 ||
      p.max_positions <= 0 || p.intermediate <= 0 || p.vocab_size <= 0)
    throw Error("graph", "text encoder hyper-parameters",
                "positive batch, sizes, and hidden divisible by heads",
                "batch " + std::to_string(batch) + ", hidden " + std::to_string(p.hidden) +
                    ", heads " + std::to_string(p.heads));
  if (p.activation != "quick_gelu" && p.activation != "gelu")
    throw Error("graph", "text encoder activation", "quick_gelu or gelu", p.activation);
}

// Embeddings and the first `layers` encoder layers; calls `tap(i, x)` after embedding (i = 0) and
// after each layer i (1-based), i.e. with hidden_states[i].
template <typename Tap>
void encoder(WeightSource& ws, const model::TextEncoderParams& p, int batch, int layers, Tap tap) {
  Graph& g = ws.graph();
  const int64_t c = p.hidden, t = p.max_positions;
  const ValueId ids = g.input("input_ids", {batch, t}, DType::I32);
  const ValueId table = ws.get("embeddings.token_embedding.weight", {p.vocab_size, c});
  ValueId x = g.embedding(ids, table);
  // Position embeddings [T, C] are the same for every batch row: view the batch as the middle
  // axis of [1, N, T*C] and add the table viewed as [1, T*C] (Add's [N, C] broadcast).
  const ValueId pos = ws.get_view("embeddings.position_embedding.weight", {t, c}, {1, t * c});
  x = g.reshape(x, {1, batch, t * c});
  x = g.add(x, pos, "embeddings.position_embedding");
  x = g.reshape(x, {batch, t, c});
  tap(0, x);
  for (int l = 0; l < layers; ++l) {
    const std::string name = "encoder.layers." + std::to_string(l);
    ValueId h = layer_norm(ws, x, name + ".layer_norm1", p.layer_norm_eps);
    const ValueId q = linear(ws, h, name + ".self_attn.q_proj", c, c);
    const ValueId k = linear(ws, h, name + ".self_attn.k_proj", c, c);
    const ValueId v = linear(ws, h, name + ".self_attn.v_proj", c, c);
    h = g.attention(q, k, v, p.heads, true, name + ".self_attn");
    h = linear(ws, h, name + ".self_attn.out_proj", c, c);
    x = g.add(h, x, name + ".attn_residual");
    h = layer_norm(ws, x, name + ".layer_norm2", p.layer_norm_eps);
    h = linear(ws, h, name + ".mlp.fc1", p.intermediate, c);
    h = p.activation == "gelu" ? g.gelu(h) : g.quick_gelu(h);
    h = linear(ws, h, name + ".mlp.fc2", c, p.intermediate);
    x = g.add(h, x, name + ".mlp_residual");
    tap(l + 1, x);
  }
}

}  // namespace

Graph build_text_encoder(const WeightMap& weights, const model::TextEncoderParams& p, int batch,
                         int clip_skip) {
  check(p, batch);
  if (clip_skip < 1 || clip_skip > p.layers)
    throw Error("graph", "clip_skip", "1.." + std::to_string(p.layers), std::to_string(clip_skip));
  Graph g;
  WeightSource ws(g, weights, kTextEncoderPrefix);
  const int used = p.layers + 1 - clip_skip;  // hidden_states[-k] = output of layer L + 1 - k
  ValueId last = kNone;
  encoder(ws, p, batch, used, [&](int i, ValueId x) {
    if (i == used) last = x;
  });
  g.output("last_hidden_state", layer_norm(ws, last, "final_layer_norm", p.layer_norm_eps));
  return g;
}

Graph build_text_encoder_both(const WeightMap& weights, const model::TextEncoderParams& p,
                              int batch) {
  check(p, batch);
  if (p.layers < 2)
    throw Error("graph", "text encoder layers", "at least 2", std::to_string(p.layers));
  Graph g;
  WeightSource ws(g, weights, kTextEncoderPrefix);
  ValueId penultimate = kNone, last = kNone;
  encoder(ws, p, batch, p.layers, [&](int i, ValueId x) {
    if (i == p.layers - 1) penultimate = x;
    if (i == p.layers) last = x;
  });
  // One Weight node pair for final_layer_norm, used by both LayerNorms.
  const ValueId gamma = ws.get("final_layer_norm.weight", {p.hidden});
  const ValueId beta = ws.get("final_layer_norm.bias", {p.hidden});
  g.output("last_hidden_state",
           g.layer_norm(last, gamma, beta, p.layer_norm_eps, "final_layer_norm"));
  g.output("penultimate_ln", g.layer_norm(penultimate, gamma, beta, p.layer_norm_eps,
                                          "final_layer_norm.penultimate"));
  return g;
}

}  // namespace sdc::graph
