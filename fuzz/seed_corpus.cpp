// sdc_fuzz_seeds OUT_DIR: writes a starting corpus for the fuzzers into OUT_DIR/<fuzzer name>/
// (unpickler, ckpt, safetensors, job_request): the pickles of the fixture checkpoints, hand-made
// pickles and checkpoints covering the opcodes and calls state dicts use, and a small safetensors
// file. Generated at fuzz time into the build folder; nothing here is committed.
#include <zip.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "common/error.h"
#include "io/image.h"
#include "io/mapped_file.h"
#include "io/pickle_builder.h"
#include "io/safetensors.h"
#include "io/zip_archive.h"
#include "server/a1111/image_base64.h"

namespace fs = std::filesystem;
using sdc::test::PickleBuilder;

namespace {

std::string fixtures() {
  const char* env = std::getenv("SDC_FIXTURES");
  return std::string(env && *env ? env : SDC_DEFAULT_FIXTURES) + "/tiny-sd15/";
}

void put(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
}

// A state dict with the layouts the reader handles: shared storage, offsets, strides, a
// parameter, a long tensor, inside a Lightning-style wrapper with bookkeeping entries.
std::string state_dict_pickle() {
  PickleBuilder p;
  p.empty_dict().put(0).mark();
  p.str("epoch").integer(1).str("global_step").integer(70000);
  p.str("state_dict").ordered_dict().mark();
  p.str("w").tensor("FloatStorage", "0", 12, 0, {3, 4}, {4, 1});
  p.str("t").tensor("FloatStorage", "0", 12, 1, {2, 2}, {1, 4});
  p.str("h").tensor("HalfStorage", "1", 4, 2, {2}, {1});
  p.str("p").global("torch._utils", "_rebuild_parameter").mark();
  p.tensor("FloatStorage", "0", 12, 8, {4}, {1}).boolean(true).ordered_dict().tuple().reduce();
  p.str("n").tensor("LongStorage", "2", 1, 0, {}, {});
  p.setitems().empty_dict().str("_metadata").ordered_dict().setitem().build();
  p.str("callbacks").empty_dict();
  p.global("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint").empty_dict();
  p.str("best").global("numpy.core.multiarray", "scalar");
  p.global("numpy", "dtype").mark().str("f8").boolean(false).boolean(true).tuple().reduce();
  p.global("_codecs", "encode").str("\x01\x02").str("latin1").op(0x86).reduce();
  p.op(0x86).reduce().setitem().setitem();
  p.str("hp").global("builtins", "set").mark().str("x").op('l').op(0x85).reduce();
  p.str("size").global("torch", "Size").mark().ints({1, 2}).tuple().reduce();
  return p.setitems().done();
}

std::string protocol4_pickle() {
  std::string ops =
      "}\x94\x8c\x01w\x94\x8c\x0b"
      "collections\x94\x8c\x0bOrderedDict\x94\x93\x94)R\x94s.";
  PickleBuilder p(4);
  p.op(0x95).raw_u(ops.size(), 8).raw(ops);
  return p.bytes();
}

void write_zip(const fs::path& path,
               const std::vector<std::pair<std::string, std::string>>& entries, bool deflate) {
  fs::create_directories(path.parent_path());
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  if (!z) throw std::runtime_error("cannot create " + path.string());
  for (const auto& [name, data] : entries) {
    zip_source_t* s = zip_source_buffer(z, data.data(), data.size(), 0);
    const zip_int64_t i = zip_file_add(z, name.c_str(), s, ZIP_FL_OVERWRITE);
    if (i < 0) throw std::runtime_error(zip_strerror(z));
    zip_set_file_compression(z, zip_uint64_t(i), deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
  }
  if (zip_close(z) != 0) throw std::runtime_error("cannot write " + path.string());
}

std::string floats(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    const float f = float(i);
    s.append(reinterpret_cast<const char*>(&f), 4);
  }
  return s;
}

}  // namespace

// The A1111 adapter's inputs: request bodies as the clients send them (first byte: 0 txt2img,
// 1 img2img), image files, prompts with <lora:> tags and infotexts.
void write_a1111_seeds(const fs::path& out) {
  const fs::path req = out / "a1111_request", img = out / "a1111_image", pr = out / "a1111_prompt";
  sdc::io::Image image(16, 16);
  for (size_t i = 0; i < image.rgb.size(); ++i) image.rgb[i] = uint8_t(i * 7);
  const std::vector<uint8_t> png = sdc::io::encode_png(image, {{"parameters", "a cat\nSteps: 3"}});
  put(img, "small.png", std::string(png.begin(), png.end()));
  const std::string b64 = sdc::server::a1111::encode_base64(png);
  put(req, "sillytavern.json",
      std::string(1, '\0') +
          R"({"url":"http://127.0.0.1:7860","auth":"","prompt":"a cat <lora:x:0.5>",)"
          R"("negative_prompt":"","sampler_name":"DDIM","scheduler":"normal","steps":20,)"
          R"("cfg_scale":7,"width":512,"height":512,"restore_faces":false,"enable_hr":false,)"
          R"("override_settings":{"CLIP_stop_at_last_layers":2,"sd_vae":"Automatic"},)"
          R"("clip_skip":2,"save_images":true,"send_images":true,"seed":5})");
  put(req, "webuiapi.json",
      std::string(1, '\0') +
          R"({"prompt":"a fox","styles":[],"seed":-1,"subseed":-1,"subseed_strength":0.0,)"
          R"("sampler_name":"Euler a","sampler_index":"Euler a","scheduler":"automatic",)"
          R"("batch_size":"2","n_iter":1,"steps":20,"cfg_scale":7.0,"width":512,"height":512,)"
          R"("eta":1.0,"hr_sampler_name":null,"script_name":null,"alwayson_scripts":{}})");
  put(req, "koboldlite_img2img.json",
      std::string(1, '\1') + R"({"prompt":"x","sampler_name":"Euler a","eta":0,"s_noise":1,)" +
          R"("override_settings":{"sd_model_checkpoint":"m [0123456789]","eta_noise_seed_delta":0},)" +
          R"("denoising_strength":0.6,"init_images":[")" + b64 + R"("]})");
  put(req, "bad.json", std::string(1, '\0') + R"({"steps":"many","styles":"a","width":500})");
  put(pr, "tags.txt", "a <lora:detail:0.5> cat <lyco:x:te=0.3:unet=0.3>, (b:1.2) <hypernet:h>");
  put(pr, "infotext.txt",
      "a cat\nNegative prompt: dog\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG "
      "scale: 7.0, Seed: 42, Size: 512x512, Lora hashes: \"a: 0123456789ab\", Version: v1");
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: sdc_fuzz_seeds OUT_DIR\n";
    return 2;
  }
  const fs::path out = argv[1];
  try {
    const fs::path pk = out / "unpickler", ck = out / "ckpt", st = out / "safetensors";
    // The fixtures' own pickles, and the malicious checkpoint as it is.
    for (const char* name : {"model.ckpt", "malicious.ckpt"}) {
      auto file = sdc::io::MappedFile::open(fixtures() + name);
      sdc::io::ZipArchive zip(file->data(), file->size(), file->path(), file);
      for (const auto& e : zip.entries())
        if (e.name.size() > 9 && e.name.compare(e.name.size() - 9, 9, "/data.pkl") == 0) {
          const sdc::io::ZipBytes b = zip.read(e);
          put(pk, std::string(name) + ".pkl",
              std::string(reinterpret_cast<const char*>(b.data), b.size));
        }
    }
    fs::create_directories(ck);
    fs::copy_file(fixtures() + "malicious.ckpt", ck / "malicious.ckpt",
                  fs::copy_options::overwrite_existing);
    put(pk, "state_dict.pkl", state_dict_pickle());
    put(pk, "protocol4.pkl", protocol4_pickle());
    put(pk, "empty_dict.pkl", PickleBuilder().empty_dict().done());
    const std::vector<std::pair<std::string, std::string>> entries{
        {"archive/data.pkl", state_dict_pickle()},
        {"archive/data/0", floats(12)},
        {"archive/data/1", std::string(8, '\x3c')},
        {"archive/data/2", std::string(8, '\0')},
        {"archive/version", "3\n"},
        {"archive/byteorder", "little"}};
    write_zip(ck / "stored.ckpt", entries, false);
    write_zip(ck / "deflated.ckpt", entries, true);
    sdc::WeightMap m;
    m.set("a", sdc::TensorRef::from_f32({1, 2, 3, 4, 5, 6}, {2, 3}, sdc::DType::F32));
    m.set("b", sdc::TensorRef::from_f32({1, 2}, {2}, sdc::DType::F16));
    m.set("c", sdc::TensorRef::from_f32({1}, {}, sdc::DType::BF16));
    fs::create_directories(st);
    sdc::io::write_safetensors((st / "small.safetensors").string(), m, {{"format", "pt"}});
    write_a1111_seeds(out);
    // Native job bodies (POST /v1/jobs): minimal, full, and a few near the limits.
    const fs::path jr = out / "job_request";
    put(jr, "minimal.json", R"({"prompt":"a cat"})");
    put(jr, "full.json",
        R"({"prompt":"a (red:1.2) fox","negative_prompt":"blurry","width":512,"height":768,)"
        R"("steps":20,"cfg_scale":7.5,"sampler":"dpmpp_2m","scheduler":"karras","seed":-1,)"
        R"("clip_skip":2,"batch_size":2,"batch_count":3,"model":"sub/m.safetensors",)"
        R"("loras":[{"name":"style/ink","weight":0.8},{"name":"x"}],"preview_every":5,"save":true})");
    put(jr, "limits.json",
        R"({"prompt":"","width":2048,"height":64,"steps":150,"seed":4294967295,"batch_size":8,"batch_count":4})");
    put(jr, "types.json", R"({"prompt":"x","steps":2.0,"cfg_scale":1e2,"width":6.4e1})");
  } catch (const std::exception& e) {
    std::cerr << "sdc_fuzz_seeds: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
