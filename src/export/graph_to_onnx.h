// Walks one graph IR (graph/graph.h) into an ONNX opset-17 model. The IR is NHWC and built for
// one (batch, height, width); the ONNX model is NCHW (rank-4 activations are images) with
// symbolic dimensions where the caller declares them. Which IR dimensions are symbolic is read by
// comparing the graph with a `probe`: the same graph built at other sizes (same nodes, other
// batch/height/width). Without a probe every dimension is fixed (--static).
//
// Op patterns (what accelerator compilers accept): Conv; Linear as MatMul+Add (1x1 Conv on
// images); GroupNorm as Reshape/InstanceNormalization/Reshape/Mul/Add; LayerNormalization;
// attention as Reshape/Transpose/MatMul/Softmax/MatMul; GELU by Erf; SiLU and quick-GELU by
// Sigmoid/Mul; nearest Resize (x2 scales, or the size of the skip connection it meets).
// With an f16 compute type, weights and activations are f16 while norms, softmax, the timestep
// embedding and graph inputs/outputs stay f32 (Cast nodes in between).
#pragma once

#include <string>
#include <vector>

#include "export/onnx_model.h"
#include "graph/graph.h"

namespace sdc::exporter {

// One graph input or output: its IR name, its ONNX name and its ONNX (NCHW) dimensions.
struct IoSpec {
  std::string ir_name, onnx_name;
  std::vector<Dim> dims;
  float scale = 1.f;  // inputs only: multiplied in first (the VAE decoder's 1/scaling_factor)
};

struct GraphExportOptions {
  std::string graph_name, doc;
  ElemType compute = ElemType::Float;   // Float or Float16
  std::vector<IoSpec> inputs, outputs;  // every IR input and output, in the order to declare
};

OnnxModel graph_to_onnx(const graph::Graph& g, const graph::Graph* probe,
                        const GraphExportOptions& options);

}  // namespace sdc::exporter
