// The CLIP text encoder (transformers CLIPTextModel; LDM names under
// cond_stage_model.transformer.text_model.*) as a graph for one batch size.
//   input:   input_ids [N,77] I32
//   output:  last_hidden_state [N,77,C] = final_layer_norm(hidden_states[-clip_skip])
//            (clip_skip 1: the usual output; 2: A1111 "clip skip 2"). Layers after the one used
//            are not built.
#pragma once

#include "common/tensor.h"
#include "graph/graph.h"
#include "model/hparams.h"

namespace sdc::graph {

Graph build_text_encoder(const WeightMap& weights, const model::TextEncoderParams& params,
                         int batch, int clip_skip = 1);

// Both outputs from one graph: last_hidden_state (clip skip 1) and penultimate_ln
// (= final_layer_norm(hidden_states[-2]), clip skip 2). Uses every weight.
Graph build_text_encoder_both(const WeightMap& weights, const model::TextEncoderParams& params,
                              int batch);

}  // namespace sdc::graph
