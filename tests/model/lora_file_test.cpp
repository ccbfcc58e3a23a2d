// LoRA file parsing: the fixtures' kohya and peft files, every other spelling on synthetic files,
// the summary for `sdc inspect`, bad files, and the --lora FILE[:SCALE] argument.
#include <gtest/gtest.h>

#include <fstream>

#include "common/error.h"
#include "common/fixtures.h"
#include "io/safetensors.h"
#include "model/lora_arg.h"
#include "model/lora_file.h"

namespace sdc::model {
namespace {

TensorRef filled(Shape shape, float base = 0.5f, DType dtype = DType::F32) {
  std::vector<float> v(size_t(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = base + 0.01f * float(i % 17);
  return TensorRef::from_f32(v, std::move(shape), dtype);
}

// Writes `tensors` as a safetensors file in `dir` and parses it back.
LoraFile write_and_parse(const test::TempDir& dir, const WeightMap& tensors,
                         const std::string& name = "l.safetensors") {
  io::write_safetensors(dir.file(name), tensors);
  return load_lora(dir.file(name));
}

std::string parse_error(const test::TempDir& dir, const WeightMap& tensors) {
  try {
    write_and_parse(dir, tensors);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

const LoraModule& module_named(const LoraFile& f, const std::string& lookup) {
  for (const LoraModule& m : f.modules)
    if (m.lookup == lookup) return m;
  throw std::runtime_error("no module " + lookup);
}

TEST(LoraFile, KohyaFixture) {
  const LoraFile f = load_lora(test::tiny("lora-kohya.safetensors"));
  const LoraSummary s = summarize_lora(f);
  EXPECT_EQ(s.unet_modules, 277);
  EXPECT_EQ(s.text_encoder_modules, 18);
  EXPECT_EQ(s.min_rank, 4);
  EXPECT_EQ(s.max_rank, 4);
  EXPECT_EQ(s.alphas, (std::set<float>{2.0f}));
  EXPECT_EQ(f.format(), "kohya LoRA");
  const LoraModule& conv = module_named(f, "lora_unet_down_blocks_0_resnets_0_conv1");
  EXPECT_EQ(conv.kind, LoraKind::LoRA);
  EXPECT_EQ(conv.component, LoraComponent::UNet);
  EXPECT_TRUE(conv.has_alpha);
  EXPECT_EQ(conv.part("lora_down")->shape, (Shape{4, 32, 3, 3}));
  EXPECT_EQ(conv.in_features(), 32 * 9);
  const LoraModule& te = module_named(f, "lora_te_text_model_encoder_layers_0_mlp_fc1");
  EXPECT_EQ(te.component, LoraComponent::TextEncoder);
  EXPECT_EQ(te.out_features(), 128);
}

TEST(LoraFile, PeftFixture) {
  const LoraFile f = load_lora(test::tiny("lora-peft.safetensors"));
  const LoraSummary s = summarize_lora(f);
  EXPECT_EQ(s.unet_modules, 277);
  EXPECT_EQ(s.text_encoder_modules, 18);
  EXPECT_EQ(s.min_rank, 4);
  EXPECT_EQ(s.max_rank, 4);
  EXPECT_EQ(f.format(), "peft LoRA");
  const LoraModule& m = module_named(f, "unet.down_blocks.0.attentions.0.proj_in");
  EXPECT_EQ(m.naming, LoraNaming::Peft);
  EXPECT_FALSE(m.has_alpha);
  EXPECT_EQ(m.alpha, 4.0f);  // no alpha: alpha = rank, i.e. a factor of 1
  EXPECT_EQ(m.alpha_scale(), 1.0f);
  EXPECT_EQ(m.name, "unet.down_blocks.0.attentions.0.proj_in");
}

TEST(LoraFile, SummaryOfTensorFile) {
  const LoraSummary s = summarize_lora(io::read_safetensors(test::tiny("lora-kohya.safetensors")));
  EXPECT_EQ(s.format, "kohya LoRA");
  EXPECT_EQ(s.kinds.at("LoRA"), 295);
  EXPECT_EQ(s.base, LoraBase::Unknown);  // the tiny model's widths say nothing
}

TEST(LoraFile, TellsLorasFromModels) {
  EXPECT_TRUE(is_lora_file(io::read_safetensors(test::tiny("lora-kohya.safetensors"))));
  EXPECT_TRUE(is_lora_file(io::read_safetensors(test::tiny("lora-peft.safetensors"))));
  EXPECT_FALSE(is_lora_file(io::read_safetensors(test::tiny("model.safetensors"))));
}

TEST(LoraFile, KohyaTextEncoderOneAndLdmPaths) {
  test::TempDir dir;
  WeightMap t;
  t.set("lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight", filled({2, 6}));
  t.set("lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight", filled({6, 2}));
  t.set("lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q.lora_down.weight",
        filled({2, 8}));
  t.set("lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q.lora_up.weight",
        filled({8, 2}));
  t.set("lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q.alpha",
        TensorRef::from_f32({1.0f}, {}, DType::F16));
  const LoraFile f = write_and_parse(dir, t);
  ASSERT_EQ(f.modules.size(), 2u);
  const LoraModule& te = module_named(f, "lora_te_text_model_encoder_layers_0_self_attn_q_proj");
  EXPECT_EQ(te.name, "lora_te1_text_model_encoder_layers_0_self_attn_q_proj");
  EXPECT_EQ(te.component, LoraComponent::TextEncoder);
  EXPECT_FALSE(te.has_alpha);
  EXPECT_EQ(te.alpha, 2.0f);
  const LoraModule& u =
      module_named(f, "lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q");
  EXPECT_TRUE(u.has_alpha);
  EXPECT_EQ(u.alpha, 1.0f);
  EXPECT_EQ(u.alpha_scale(), 0.5f);
}

TEST(LoraFile, PeftWithBaseModelPrefix) {
  test::TempDir dir;
  WeightMap t;
  t.set("base_model.model.down_blocks.0.attentions.0.proj_in.lora_A.weight", filled({2, 8, 1, 1}));
  t.set("base_model.model.down_blocks.0.attentions.0.proj_in.lora_B.weight", filled({8, 2, 1, 1}));
  t.set("base_model.model.text_model.encoder.layers.0.mlp.fc1.lora_A.weight", filled({2, 6}));
  t.set("base_model.model.text_model.encoder.layers.0.mlp.fc1.lora_B.weight", filled({12, 2}));
  t.set("base_model.model.unet.mid_block.attentions.0.proj_out.lora_A.weight", filled({2, 8}));
  t.set("base_model.model.unet.mid_block.attentions.0.proj_out.lora_B.weight", filled({8, 2}));
  const LoraFile f = write_and_parse(dir, t);
  EXPECT_EQ(f.format(), "peft LoRA");
  EXPECT_EQ(module_named(f, "unet.down_blocks.0.attentions.0.proj_in").component,
            LoraComponent::UNet);
  EXPECT_EQ(module_named(f, "text_encoder.text_model.encoder.layers.0.mlp.fc1").component,
            LoraComponent::TextEncoder);
  EXPECT_EQ(module_named(f, "unet.mid_block.attentions.0.proj_out").rank, 2);
}

TEST(LoraFile, OldDiffusersSpellings) {
  test::TempDir dir;
  WeightMap t;
  const std::string attn = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1";
  t.set(attn + ".processor.to_q_lora.down.weight", filled({2, 8}));
  t.set(attn + ".processor.to_q_lora.up.weight", filled({8, 2}));
  t.set(attn + ".processor.to_out_lora.down.weight", filled({2, 8}));
  t.set(attn + ".processor.to_out_lora.up.weight", filled({8, 2}));
  const std::string te = "text_encoder.text_model.encoder.layers.0.self_attn";
  t.set(te + ".to_v_lora.down.weight", filled({2, 6}));
  t.set(te + ".to_v_lora.up.weight", filled({6, 2}));
  t.set(te + ".out_proj.lora_linear_layer.down.weight", filled({2, 6}));
  t.set(te + ".out_proj.lora_linear_layer.up.weight", filled({6, 2}));
  t.set("unet.mid_block.attentions.0.proj_in.lora.down.weight", filled({2, 8}));
  t.set("unet.mid_block.attentions.0.proj_in.lora.up.weight", filled({8, 2}));
  t.set("unet.mid_block.attentions.0.proj_in.alpha", TensorRef::from_f32({1}, {}, DType::F32));
  const LoraFile f = write_and_parse(dir, t);
  EXPECT_EQ(f.modules.size(), 5u);
  EXPECT_EQ(f.format(), "diffusers-legacy LoRA");
  EXPECT_EQ(module_named(f, attn + ".to_q").naming, LoraNaming::DiffusersLegacy);
  module_named(f, attn + ".to_out.0");
  module_named(f, te + ".v_proj");
  module_named(f, te + ".out_proj");
  const LoraModule& p = module_named(f, "unet.mid_block.attentions.0.proj_in");
  EXPECT_EQ(p.naming, LoraNaming::DiffusersLegacy);  // decided by its parts, not by .alpha
  EXPECT_EQ(p.alpha, 1.0f);
}

TEST(LoraFile, LycorisKinds) {
  test::TempDir dir;
  WeightMap t;
  const std::string h = "lora_unet_down_blocks_0_attentions_0_proj_in";
  t.set(h + ".hada_w1_a", filled({8, 2}));
  t.set(h + ".hada_w1_b", filled({2, 8}));
  t.set(h + ".hada_w2_a", filled({8, 2}));
  t.set(h + ".hada_w2_b", filled({2, 8}));
  const std::string k = "lora_unet_down_blocks_0_attentions_0_proj_out";
  t.set(k + ".lokr_w1", filled({2, 2}));
  t.set(k + ".lokr_w2_a", filled({4, 3}));
  t.set(k + ".lokr_w2_b", filled({3, 4}));
  t.set(k + ".dora_scale", filled({8, 1}));
  const LoraFile f = write_and_parse(dir, t);
  EXPECT_EQ(f.format(), "kohya LoHa/LoKr+DoRA");
  const LoraModule& loha = module_named(f, h);
  EXPECT_EQ(loha.kind, LoraKind::LoHa);
  EXPECT_EQ(loha.rank, 2);
  EXPECT_EQ(loha.out_features(), 8);
  const LoraModule& lokr = module_named(f, k);
  EXPECT_EQ(lokr.kind, LoraKind::LoKr);
  EXPECT_EQ(lokr.rank, 3);
  EXPECT_EQ(lokr.out_features(), 8);
  EXPECT_EQ(lokr.in_features(), 8);
  EXPECT_EQ(lokr.dora, DoraAxis::Output);
}

TEST(LoraFile, SafetensorsWhoseHeaderLengthStartsLikeAPickle) {
  // Header length 0x0280: its first two bytes, 0x80 0x02, are also how a pickle starts.
  test::TempDir dir;
  std::string header =
      R"({"lora_unet_a.lora_down.weight":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]},)"
      R"("lora_unet_a.lora_up.weight":{"dtype":"F32","shape":[1,1],"data_offsets":[4,8]}})";
  header.resize(0x280, ' ');
  std::ofstream out(dir.file("p.safetensors"), std::ios::binary);
  for (int i = 0; i < 8; ++i) out.put(char((header.size() >> (8 * i)) & 0xff));
  out << header;
  const float values[2] = {0.5f, 2.0f};
  out.write(reinterpret_cast<const char*>(values), sizeof values);
  out.close();
  const LoraFile f = load_lora(dir.file("p.safetensors"));
  ASSERT_EQ(f.modules.size(), 1u);
  EXPECT_EQ(f.modules[0].part("lora_up")->to_f32(), std::vector<float>{2.0f});
}

TEST(LoraFile, DetectsSdxlAndSd2) {
  {
    test::TempDir dir;
    WeightMap t;
    t.set("lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight",
          filled({2, 1280}));
    t.set("lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight",
          filled({1280, 2}));
    const LoraFile f = write_and_parse(dir, t);
    EXPECT_EQ(f.base, LoraBase::SDXL);
    EXPECT_NE(f.base_evidence.find("lora_te2_"), std::string::npos) << f.base_evidence;
  }
  {
    test::TempDir dir;
    WeightMap t;
    const std::string m = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k";
    t.set(m + ".lora_down.weight", filled({2, 2048}));
    t.set(m + ".lora_up.weight", filled({640, 2}));
    EXPECT_EQ(write_and_parse(dir, t).base, LoraBase::SDXL);
  }
  {
    test::TempDir dir;
    WeightMap t;
    const std::string m = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_v";
    t.set(m + ".lora_A.weight", filled({2, 1024}));
    t.set(m + ".lora_B.weight", filled({320, 2}));
    const LoraFile f = write_and_parse(dir, t);
    EXPECT_EQ(f.base, LoraBase::SD2);
    EXPECT_NE(f.base_evidence.find("1024"), std::string::npos) << f.base_evidence;
  }
}

TEST(LoraFile, DetectsSdxlAndSd2ByDepth) {
  {
    test::TempDir dir;
    WeightMap t;
    const std::string m = "lora_unet_input_blocks_7_1_transformer_blocks_3_attn1_to_q";
    t.set(m + ".lora_down.weight", filled({2, 1280}));
    t.set(m + ".lora_up.weight", filled({1280, 2}));
    const LoraFile f = write_and_parse(dir, t);
    EXPECT_EQ(f.base, LoraBase::SDXL);
    EXPECT_EQ(f.base_evidence, "transformer depth above 1 in " + m);
  }
  {
    test::TempDir dir;
    WeightMap t;
    const std::string m = "lora_te_text_model_encoder_layers_22_mlp_fc1";
    t.set(m + ".lora_down.weight", filled({2, 1024}));
    t.set(m + ".lora_up.weight", filled({4096, 2}));
    const LoraFile f = write_and_parse(dir, t);
    EXPECT_EQ(f.base, LoraBase::SD2);
    EXPECT_EQ(f.base_evidence, "text-encoder layer 12 or above in " + m);
  }
  {
    // SD1.5's own names say SD1 where a width is visible, and nothing more.
    const LoraFile f = load_lora(test::tiny("lora-kohya.safetensors"));
    EXPECT_EQ(f.base, LoraBase::Unknown);  // the tiny model is 32 wide
  }
}

TEST(LoraFileBadInput, UnknownTensorName) {
  test::TempDir dir;
  WeightMap t;
  t.set("lora_unet_a.lora_down.weight", filled({2, 4}));
  t.set("lora_unet_a.lora_up.weight", filled({4, 2}));
  t.set("model.diffusion_model.out.0.weight", filled({4}));
  const std::string e = parse_error(dir, t);
  EXPECT_NE(e.find("model.diffusion_model.out.0.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("expected LoRA tensor names"), std::string::npos) << e;
}

TEST(LoraFileBadInput, UnknownKohyaPart) {
  test::TempDir dir;
  WeightMap t;
  t.set("lora_unet_a.lora_sideways.weight", filled({2, 4}));
  EXPECT_NE(parse_error(dir, t).find("lora_unet_a.lora_sideways.weight"), std::string::npos);
}

TEST(LoraFileBadInput, UpWithoutDown) {
  test::TempDir dir;
  WeightMap t;
  t.set("lora_unet_a.lora_up.weight", filled({4, 2}));
  t.set("lora_unet_a.alpha", filled({}));
  const std::string e = parse_error(dir, t);
  EXPECT_NE(e.find("lora_unet_a: expected both lora_down and lora_up"), std::string::npos) << e;
}

TEST(LoraFileBadInput, RankMismatch) {
  test::TempDir dir;
  WeightMap t;
  t.set("lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", filled({4, 8}));
  t.set("lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight", filled({8, 2}));
  const std::string e = parse_error(dir, t);
  EXPECT_NE(e.find("lora_unet_down_blocks_0_attentions_0_proj_in: expected the same rank"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("rank mismatch: lora_up [8, 2], lora_down [4, 8]"), std::string::npos) << e;
}

TEST(LoraFileBadInput, LohaRankMismatch) {
  test::TempDir dir;
  WeightMap t;
  t.set("lora_unet_a.hada_w1_a", filled({8, 2}));
  t.set("lora_unet_a.hada_w1_b", filled({2, 8}));
  t.set("lora_unet_a.hada_w2_a", filled({8, 3}));
  t.set("lora_unet_a.hada_w2_b", filled({2, 8}));
  EXPECT_NE(parse_error(dir, t).find("rank mismatch: hada_w2_a [8, 3], hada_w2_b [2, 8]"),
            std::string::npos);
}

TEST(LoraFileBadInput, AlphaNotAScalar) {
  test::TempDir dir;
  WeightMap t;
  t.set("lora_unet_a.lora_down.weight", filled({2, 4}));
  t.set("lora_unet_a.lora_up.weight", filled({4, 2}));
  t.set("lora_unet_a.alpha", filled({2}));
  const std::string e = parse_error(dir, t);
  EXPECT_NE(e.find("lora_unet_a.alpha: expected a single number (alpha), found shape [2]"),
            std::string::npos)
      << e;
}

TEST(LoraFileBadInput, IntegerFactor) {
  test::TempDir dir;
  WeightMap t;
  t.set("lora_unet_a.lora_down.weight", filled({2, 4}));
  std::vector<int32_t> ints(8, 1);
  TensorRef up;
  up.dtype = DType::I32;
  up.shape = {4, 2};
  auto buf = std::make_shared<std::vector<int32_t>>(ints);
  up.data = buf->data();
  up.nbytes = buf->size() * 4;
  up.owner = buf;
  t.set("lora_unet_a.lora_up.weight", up);
  EXPECT_NE(parse_error(dir, t).find("lora_unet_a.lora_up.weight: expected a float tensor"),
            std::string::npos);
}

TEST(LoraFileBadInput, DoraMagnitudeOfWrongSize) {
  test::TempDir dir;
  WeightMap t;
  t.set("unet.mid_block.attentions.0.proj_in.lora_A.weight", filled({2, 8}));
  t.set("unet.mid_block.attentions.0.proj_in.lora_B.weight", filled({8, 2}));
  t.set("unet.mid_block.attentions.0.proj_in.lora_magnitude_vector", filled({7}));
  const std::string e = parse_error(dir, t);
  EXPECT_NE(e.find("expected 8 magnitudes (one per output channel), found shape [7]"),
            std::string::npos)
      << e;
}

TEST(LoraFileBadInput, EmptyFile) {
  test::TempDir dir;
  EXPECT_NE(parse_error(dir, WeightMap{}).find("expected LoRA tensors, found none"),
            std::string::npos);
}

TEST(LoraArg, PathOnly) {
  const LoraSpec s = parse_lora_arg("dir/lora.safetensors");
  EXPECT_EQ(s.path, "dir/lora.safetensors");
  EXPECT_EQ(s.scale, 1.0f);
}

TEST(LoraArg, PathAndScale) {
  LoraSpec s = parse_lora_arg("lora.safetensors:0.7");
  EXPECT_EQ(s.path, "lora.safetensors");
  EXPECT_FLOAT_EQ(s.scale, 0.7f);
  s = parse_lora_arg("a:b/lora.safetensors:-1e-1");  // only the last ':' splits
  EXPECT_EQ(s.path, "a:b/lora.safetensors");
  EXPECT_FLOAT_EQ(s.scale, -0.1f);
}

TEST(LoraArg, ColonInsidePath) {
  // The part after the last ':' holds a '/': a folder name, not a scale.
  EXPECT_EQ(parse_lora_arg("C:/loras/x.safetensors").path, "C:/loras/x.safetensors");
  // An existing file whose name has a ':'.
  test::TempDir dir;
  const std::string p = dir.file("odd:name.safetensors");
  std::ofstream(p) << "x";
  const LoraSpec s = parse_lora_arg(p);
  EXPECT_EQ(s.path, p);
  EXPECT_EQ(s.scale, 1.0f);
}

std::string arg_error(const std::string& arg) {
  try {
    parse_lora_arg(arg);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "no error";
}

TEST(LoraArg, ScaleThatIsNotANumber) {
  const std::string e = arg_error("lora.safetensors:abc");
  EXPECT_NE(e.find("--lora lora.safetensors:abc: expected FILE or FILE:SCALE with SCALE a number, "
                   "found scale 'abc'"),
            std::string::npos)
      << e;
  EXPECT_NE(arg_error("lora.safetensors:").find("scale ''"), std::string::npos);
  EXPECT_NE(arg_error("lora.safetensors:0.7x").find("scale '0.7x'"), std::string::npos);
  EXPECT_NE(arg_error("lora.safetensors:nan").find("scale 'nan'"), std::string::npos);
  EXPECT_NE(arg_error("lora.safetensors:1e99").find("scale '1e99'"), std::string::npos);
  EXPECT_NE(arg_error(":0.5").find("no file name"), std::string::npos);
  EXPECT_NE(arg_error("").find("an empty argument"), std::string::npos);
}

}  // namespace
}  // namespace sdc::model
