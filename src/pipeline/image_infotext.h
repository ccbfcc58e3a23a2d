// The A1111 "parameters" of one generated image: the request's (describe() in model_bundle.h)
// plus what only the run knows — the image's variation seed, the hashes of the textual-inversion
// embeddings its prompts used ("TI hashes", as A1111 writes them) — and A1111's inpainting keys
// ("Mask blur", "Mask mode").
#pragma once

#include <cstddef>

#include "pipeline/generation_params.h"
#include "pipeline/model_bundle.h"
#include "pipeline/stable_diffusion.h"

namespace sdc::pipeline {

GenerationParams describe_image(const ModelBundle& bundle, const GenerationRequest& request,
                                const BatchResult& batch, size_t image);

}  // namespace sdc::pipeline
