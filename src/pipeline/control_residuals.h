// Hands a ControlNet plan's 12 down residuals and its mid residual to the UNet plan's control
// inputs, in the plans' own layout (no reordering): the only coupling between the two networks.
#pragma once

#include "backend/cpu/plan.h"

namespace sdc::pipeline {

void pass_control_residuals(const cpu::Plan& controlnet, cpu::Plan& unet);

}  // namespace sdc::pipeline
