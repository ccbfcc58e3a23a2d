// Names of the generation stages, as progress events and the job API report them.
#include "pipeline/generation_control.h"

namespace sdc::pipeline {

const char* stage_name(GenerationStage s) {
  switch (s) {
    case GenerationStage::Preparing:
      return "preparing";
    case GenerationStage::EncodingText:
      return "encoding_text";
    case GenerationStage::InitialLatents:
      return "initial_latents";
    case GenerationStage::Denoising:
      return "denoising";
    case GenerationStage::Decoding:
      return "decoding";
    case GenerationStage::Done:
      return "done";
  }
  return "unknown";
}

}  // namespace sdc::pipeline
