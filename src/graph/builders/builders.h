// Everything a pipeline needs to build component graphs: one include.
#pragma once

#include "graph/builders/controlnet.h"
#include "graph/builders/taesd.h"
#include "graph/builders/text_encoder.h"
#include "graph/builders/unet.h"
#include "graph/builders/unet_blocks.h"
#include "graph/builders/vae.h"
#include "graph/builders/weight_source.h"
#include "graph/builders/weight_usage.h"
