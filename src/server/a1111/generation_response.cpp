// Building the txt2img/img2img response.
#include "server/a1111/generation_response.h"

#include "server/a1111/image_base64.h"

namespace sdc::server::a1111 {

using nlohmann::json;

json info_json(const A1111Generation& g, const GenerationOutput& out) {
  const json& p = g.parameters;
  const size_t n = out.seeds.size();
  // A1111 reports the prompt as the client wrote it, extra-network tags included.
  const std::string prompt = p.value("prompt", "");
  const std::string negative = p.value("negative_prompt", "");
  json all_seeds = json::array(), all_subseeds = json::array();
  const int64_t subseed = p.value("subseed", int64_t(-1));
  for (size_t i = 0; i < n; ++i) {
    all_seeds.push_back(out.seeds[i]);
    all_subseeds.push_back(subseed >= 0 ? subseed + int64_t(i) : out.seeds[i]);
  }
  json info;
  info["prompt"] = prompt;
  info["all_prompts"] = json(std::vector<std::string>(n, prompt));
  info["negative_prompt"] = negative;
  info["all_negative_prompts"] = json(std::vector<std::string>(n, negative));
  info["seed"] = n ? out.seeds[0] : p.value("seed", int64_t(-1));
  info["all_seeds"] = all_seeds;
  info["subseed"] = all_subseeds.empty() ? json(subseed) : all_subseeds[0];
  info["all_subseeds"] = all_subseeds;
  info["subseed_strength"] = p.value("subseed_strength", 0.0);
  info["width"] = g.request.width;
  info["height"] = g.request.height;
  info["sampler_name"] = g.sampler.display_name;
  info["cfg_scale"] = out.cfg_scale;
  info["steps"] = out.steps;
  info["batch_size"] = g.request.batch_size;
  info["restore_faces"] = false;
  info["face_restoration_model"] = nullptr;
  info["sd_model_name"] = out.model_name;
  info["sd_model_hash"] = out.model_hash.empty() ? json(nullptr) : json(out.model_hash);
  info["sd_vae_name"] = nullptr;
  info["sd_vae_hash"] = nullptr;
  info["seed_resize_from_w"] = p.value("seed_resize_from_w", int64_t(-1));
  info["seed_resize_from_h"] = p.value("seed_resize_from_h", int64_t(-1));
  info["denoising_strength"] =
      g.mode == GenerationMode::Img2Img ? json(g.request.strength) : p["denoising_strength"];
  info["extra_generation_params"] = {{"Schedule type", g.sampler.schedule_label}};
  info["index_of_first_image"] = 0;
  info["infotexts"] = out.infotexts;
  info["styles"] = g.styles;
  info["job_timestamp"] = out.job_timestamp;
  info["clip_skip"] = out.clip_skip;
  info["is_using_inpainting_conditioning"] = out.inpainting_conditioning;
  info["version"] = "sdc";
  return info;
}

json generation_response(const A1111Generation& g, const GenerationOutput& out) {
  json images = json::array();
  if (g.send_images)
    for (const std::string& png : out.pngs)
      images.push_back(encode_base64(reinterpret_cast<const uint8_t*>(png.data()), png.size()));
  return {{"images", images}, {"parameters", g.parameters}, {"info", info_json(g, out).dump()}};
}

}  // namespace sdc::server::a1111
