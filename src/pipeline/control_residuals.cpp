// ControlNet -> UNet residual hand-over (see control_residuals.h).
#include "pipeline/control_residuals.h"

#include <cstring>
#include <string>

#include "graph/builders/builders.h"

namespace sdc::pipeline {
namespace {
void copy_output(const cpu::Plan& from, const std::string& out, cpu::Plan& to,
                 const std::string& in) {
  const size_t n = size_t(shape_numel(from.output_shape(out)));
  std::memcpy(to.input_f32(in), from.output(out), n * sizeof(float));
}
}  // namespace

void pass_control_residuals(const cpu::Plan& controlnet, cpu::Plan& unet) {
  for (int i = 0; i < 12; ++i)
    copy_output(controlnet, graph::controlnet_down_name(i), unet, graph::control_down_name(i));
  copy_output(controlnet, graph::kControlNetMid, unet, graph::kControlMid);
}

}  // namespace sdc::pipeline
