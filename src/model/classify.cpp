// Classification by tensor names and shapes, and normalisation to LDM names.
#include "model/classify.h"

#include <optional>

#include "common/error.h"
#include "model/compiled_model.h"
#include "model/key_mapping.h"

namespace sdc::model {

namespace {

bool has_prefix(const WeightMap& m, const std::string& prefix) {
  auto it = m.all().lower_bound(prefix);
  return it != m.all().end() && it->first.rfind(prefix, 0) == 0;
}

std::string first_with_prefix(const WeightMap& m, const std::string& prefix) {
  auto it = m.all().lower_bound(prefix);
  return it != m.all().end() && it->first.rfind(prefix, 0) == 0 ? it->first : std::string();
}

// The first name containing `part`, or "".
std::string first_containing(const WeightMap& m, const std::string& part) {
  for (const auto& [n, t] : m.all())
    if (n.find(part) != std::string::npos) return n;
  return {};
}

LoraFormat lora_format_of(const WeightMap& m, std::string& evidence) {
  // LyCORIS files reuse kohya's lora_unet_ prefixes, so their own markers are checked first.
  const std::pair<const char*, LoraFormat> markers[] = {
      {".hada_w1_a", LoraFormat::LoHa},
      {".lokr_w1", LoraFormat::LoKr},
      {".lora_down.weight", LoraFormat::Kohya},
      {".lora_up.weight", LoraFormat::Kohya},
      {".lora_A.weight", LoraFormat::Peft},
      {".lora_B.weight", LoraFormat::Peft},
      {"_lora.down.weight", LoraFormat::DiffusersAttnProcs},
      {"_lora.up.weight", LoraFormat::DiffusersAttnProcs},
  };
  for (const auto& [marker, format] : markers) {
    std::string n = first_containing(m, marker);
    if (!n.empty()) {
      evidence = n;
      return format;
    }
  }
  return LoraFormat::None;
}

std::string shape_evidence(const std::string& name, const TensorRef& t) {
  return name + " " + shape_str(t.shape);
}

// Architecture from LDM-named weights (after normalisation) or, for files we will not
// normalise, from the raw names.
Architecture architecture_of(const WeightMap& raw, std::string& evidence) {
  // SDXL: a second text encoder and the UNet's extra (pooled text + size) embedding.
  for (const char* p :
       {"conditioner.embedders.", "model.diffusion_model.label_emb.", "control_model.label_emb.",
        "controlnet.add_embedding.", "text_encoder_2.", "unet.add_embedding.", "add_embedding."}) {
    std::string n = first_with_prefix(raw, p);
    if (!n.empty()) {
      evidence = n;
      return Architecture::SDXL;
    }
  }
  // SD2.x: OpenCLIP text encoder in LDM files.
  if (std::string n = first_with_prefix(raw, "cond_stage_model.model."); !n.empty()) {
    evidence = n;
    return Architecture::SD2;
  }
  // Cross-attention context width: 768 for SD1.x, 1024 for SD2.x, 2048 for SDXL.
  for (const char* k :
       {"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight",
        "control_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight",
        "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight",
        "controlnet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight",
        "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"}) {
    const TensorRef* t = raw.find(k);
    if (t && t->shape.size() == 2 && t->shape[1] >= 1024) {
      evidence =
          "context width " + std::to_string(t->shape[1]) + " (" + shape_evidence(k, *t) + ")";
      return t->shape[1] >= 2048 ? Architecture::SDXL : Architecture::SD2;
    }
  }
  // SD2.x diffusers text encoder: CLIP ViT-H width 1024.
  for (const char* k :
       {"text_encoder.text_model.embeddings.token_embedding.weight",
        "text_model.embeddings.token_embedding.weight",
        "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"}) {
    const TensorRef* t = raw.find(k);
    if (t && t->shape.size() == 2 && t->shape[1] == 1024) {
      evidence = "text width 1024 (" + shape_evidence(k, *t) + ")";
      return Architecture::SD2;
    }
  }
  // Inpainting: the UNet also takes the mask and the masked image (4 + 1 + 4 channels).
  for (const char* k : {"model.diffusion_model.input_blocks.0.0.weight", "unet.conv_in.weight"}) {
    const TensorRef* t = raw.find(k);
    if (t && t->shape.size() == 4 && t->shape[1] == 9) {
      evidence = shape_evidence(k, *t);
      return Architecture::SD1Inpainting;
    }
  }
  return Architecture::SD1;
}

Naming naming_of(const WeightMap& m) {
  for (Component c :
       {Component::UNet, Component::Vae, Component::TextEncoder, Component::ControlNet})
    if (has_prefix(m, ldm_prefix(c))) return Naming::Ldm;
  if (has_prefix(m, "cond_stage_model.")) return Naming::Ldm;
  for (Component c :
       {Component::UNet, Component::Vae, Component::TextEncoder, Component::ControlNet})
    if (has_prefix(m, diffusers_prefix(c))) return Naming::Diffusers;
  if (m.contains("controlnet_cond_embedding.conv_in.weight"))
    return Naming::BareDiffusersControlNet;
  if (m.contains("encoder.conv_in.weight") || m.contains("decoder.conv_in.weight")) {
    if (has_prefix(m, "encoder.down_blocks.") || has_prefix(m, "decoder.up_blocks."))
      return Naming::BareDiffusersVae;
    if (has_prefix(m, "encoder.down.") || has_prefix(m, "decoder.up.")) return Naming::BareLdmVae;
  }
  if (m.contains("conv_in.weight") && has_prefix(m, "down_blocks."))
    return Naming::BareDiffusersUNet;
  if (has_prefix(m, "text_model.")) return Naming::BareTextEncoder;
  return Naming::Other;
}

// Bare names get their component prefix so that the key table applies.
WeightMap prefixed(const WeightMap& m, const std::string& prefix) {
  WeightMap out;
  out.description = m.description;
  for (const auto& [n, t] : m.all()) out.set(prefix + n, t);
  return out;
}

}  // namespace

const char* kind_name(ModelKind k) {
  switch (k) {
    case ModelKind::Checkpoint:
      return "checkpoint";
    case ModelKind::Lora:
      return "lora";
    case ModelKind::ControlNet:
      return "controlnet";
    case ModelKind::Vae:
      return "vae";
    case ModelKind::TextEncoder:
      return "text_encoder";
    case ModelKind::UNet:
      return "unet";
    case ModelKind::Compiled:
      return "compiled";
    case ModelKind::Unknown:
      return "unknown";
  }
  return "?";
}

const char* architecture_name(Architecture a) {
  switch (a) {
    case Architecture::SD1:
      return "SD1.x";
    case Architecture::SD1Inpainting:
      return "SD1.x inpainting";
    case Architecture::SD2:
      return "SD2.x";
    case Architecture::SDXL:
      return "SDXL";
    case Architecture::Unknown:
      return "unknown";
  }
  return "?";
}

const char* naming_name(Naming n) {
  switch (n) {
    case Naming::Ldm:
      return "ldm";
    case Naming::Diffusers:
      return "diffusers";
    case Naming::BareLdmVae:
      return "bare-ldm-vae";
    case Naming::BareDiffusersVae:
      return "bare-diffusers-vae";
    case Naming::BareDiffusersUNet:
      return "bare-diffusers-unet";
    case Naming::BareDiffusersControlNet:
      return "bare-diffusers-controlnet";
    case Naming::BareTextEncoder:
      return "bare-text-encoder";
    case Naming::Other:
      return "other";
  }
  return "?";
}

const char* lora_format_name(LoraFormat f) {
  switch (f) {
    case LoraFormat::None:
      return "none";
    case LoraFormat::Kohya:
      return "kohya";
    case LoraFormat::Peft:
      return "peft";
    case LoraFormat::LoHa:
      return "loha";
    case LoraFormat::LoKr:
      return "lokr";
    case LoraFormat::DiffusersAttnProcs:
      return "diffusers-attn-procs";
  }
  return "?";
}

Classification classify(const io::TensorFile& with_packed) {
  // A compiled file's packed section (backend layouts) says nothing about what the model is.
  // Copied without it only when it has one (load_model passes a copy that has none already).
  std::optional<io::TensorFile> copy;
  if (has_packed_section(with_packed)) copy = without_packed_section(with_packed);
  const io::TensorFile& file = copy ? *copy : with_packed;
  Classification c;
  const WeightMap& m = file.tensors;

  c.lora_format = lora_format_of(m, c.evidence);
  if (c.lora_format != LoraFormat::None) {
    c.kind = ModelKind::Lora;
    c.naming = Naming::Other;
    return c;
  }

  c.naming = naming_of(m);
  c.architecture = architecture_of(m, c.evidence);
  switch (c.naming) {
    case Naming::Ldm:
      c.has_unet = has_prefix(m, ldm_prefix(Component::UNet));
      c.has_vae = has_prefix(m, ldm_prefix(Component::Vae));
      c.has_text_encoder = has_prefix(m, "cond_stage_model.transformer.");
      c.has_controlnet = has_prefix(m, ldm_prefix(Component::ControlNet));
      break;
    case Naming::Diffusers:
      c.has_unet = has_prefix(m, diffusers_prefix(Component::UNet));
      c.has_vae = has_prefix(m, diffusers_prefix(Component::Vae));
      c.has_text_encoder = has_prefix(m, diffusers_prefix(Component::TextEncoder));
      c.has_controlnet = has_prefix(m, diffusers_prefix(Component::ControlNet));
      break;
    case Naming::BareLdmVae:
    case Naming::BareDiffusersVae:
      c.has_vae = true;
      break;
    case Naming::BareDiffusersUNet:
      c.has_unet = true;
      break;
    case Naming::BareDiffusersControlNet:
      c.has_controlnet = true;
      break;
    case Naming::BareTextEncoder:
      c.has_text_encoder = true;
      break;
    case Naming::Other:
      break;
  }
  // SDXL LDM files keep their text encoders under conditioner.*: still a checkpoint.
  const bool sdxl_unet =
      c.architecture == Architecture::SDXL && has_prefix(m, "model.diffusion_model.");

  if (file.format == io::FileFormat::Gguf) {
    // A compiled sdc file says so in its metadata; one holding LDM-named weights is one too.
    if (file.metadata.is_object() && file.metadata.contains("sdc.version")) {
      c.kind = ModelKind::Compiled;
      if (c.evidence.empty()) c.evidence = "metadata sdc.version";
    } else if (c.naming == Naming::Ldm) {
      c.kind = ModelKind::Compiled;
    } else {
      c.kind = ModelKind::Unknown;
      if (file.metadata.is_object() && file.metadata.contains("general.architecture"))
        c.evidence = "general.architecture " + file.metadata["general.architecture"].dump();
    }
    if (c.kind == ModelKind::Unknown) c.architecture = Architecture::Unknown;
    return c;
  }

  if (c.has_controlnet)
    c.kind = ModelKind::ControlNet;
  else if (c.naming == Naming::BareDiffusersUNet)
    c.kind = ModelKind::UNet;
  else if (c.has_unet || sdxl_unet)
    c.kind = ModelKind::Checkpoint;
  else if (c.has_vae && !c.has_text_encoder)
    c.kind = ModelKind::Vae;
  else if (c.has_text_encoder && !c.has_vae)
    c.kind = ModelKind::TextEncoder;
  else if (c.has_vae && c.has_text_encoder)
    c.kind = ModelKind::Checkpoint;  // a checkpoint missing its UNet: the loader says so
  else
    c.kind = ModelKind::Unknown;
  // A VAE alone does not tell SD1 from SD2 (they share it).
  if (c.kind == ModelKind::Vae || c.kind == ModelKind::Unknown) {
    if (c.architecture == Architecture::SD1) c.architecture = Architecture::Unknown;
  }
  return c;
}

WeightMap to_ldm_weights(const io::TensorFile& file, const Classification& c) {
  const WeightMap& m = file.tensors;
  if (c.kind == ModelKind::Lora)
    throw Error(file.path, "", "model weights",
                std::string("a LoRA (") + lora_format_name(c.lora_format) + ")");
  switch (c.naming) {
    case Naming::Ldm:
      // Through the table and back: validates every name, folds the old text encoder prefix and
      // gives the VAE attention its LDM conv shape whichever shape the file stored.
      return diffusers_to_ldm(ldm_to_diffusers(m));
    case Naming::Diffusers:
      return diffusers_to_ldm(m);
    case Naming::BareLdmVae:
      return diffusers_to_ldm(ldm_to_diffusers(prefixed(m, ldm_prefix(Component::Vae))));
    case Naming::BareDiffusersVae:
      return diffusers_to_ldm(prefixed(m, diffusers_prefix(Component::Vae)));
    case Naming::BareDiffusersUNet:
      return diffusers_to_ldm(prefixed(m, diffusers_prefix(Component::UNet)));
    case Naming::BareDiffusersControlNet:
      return diffusers_to_ldm(prefixed(m, diffusers_prefix(Component::ControlNet)));
    case Naming::BareTextEncoder:
      return diffusers_to_ldm(prefixed(m, diffusers_prefix(Component::TextEncoder)));
    case Naming::Other:
      break;
  }
  throw Error(
      file.path, "", "Stable Diffusion weights (UNet, VAE, text encoder or ControlNet names)",
      m.size() == 0 ? "no tensors" : "unrecognised tensor names such as " + m.all().begin()->first);
}

}  // namespace sdc::model
