// CLIP tokenizer: the 15 tokenizer cases of tiny-sd15 (transformers' slow CLIPTokenizer with
// ftfy) must match exactly; plus the clean-up steps one by one, and bad vocabularies.
#include "text/tokenizer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/error.h"
#include "common/fixtures.h"
#include "text/builtin_vocab.h"
#include "text/text_normalizer.h"
#include "text/unicode_text.h"

namespace sdc::text {
namespace {

std::vector<nlohmann::json> tokenizer_cases() {
  std::vector<nlohmann::json> out;
  for (const auto& c : test::cases()["cases"])
    if (c["kind"] == "tokenizer") out.push_back(c);
  return out;
}

std::string clean(const std::string& text) {
  return u32_to_utf8(clip_clean_text(utf8_to_u32(text)));
}

TEST(ClipTokenizer, AllFixtureCasesMatchTransformers) {
  const auto& tok = ClipTokenizer::builtin();
  const auto cases = tokenizer_cases();
  ASSERT_EQ(cases.size(), 15u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c["id"].get<std::string>());
    const std::string prompt = c["prompt"];
    EXPECT_EQ(tok.encode(prompt), c["content_ids"].get<std::vector<int>>());
    EXPECT_EQ(tok.tokens(prompt), c["tokens"].get<std::vector<std::string>>());
    EXPECT_EQ(tok.encode(prompt).size() + 2, c["num_tokens_untruncated"].get<size_t>());
    // input_ids are in reference.safetensors as int64 [1, 77].
    const TensorRef& ref =
        test::reference().tensors.get(c["tensors"]["input_ids"].get<std::string>());
    ASSERT_EQ(ref.dtype, DType::I64);
    ASSERT_EQ(ref.numel(), 77);
    const auto* ref_ids = static_cast<const int64_t*>(ref.data);
    const auto ids = tok.encode_padded(prompt);
    ASSERT_EQ(ids.size(), 77u);
    for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(ids[i], ref_ids[i]) << "position " << i;
    EXPECT_EQ(c["truncated"].get<bool>(), tok.encode(prompt).size() > 75);
  }
}

TEST(ClipTokenizer, PaddedLayout) {
  const auto& tok = ClipTokenizer::builtin();
  EXPECT_EQ(tok.bos_id(), 49406);
  EXPECT_EQ(tok.eos_id(), 49407);
  EXPECT_EQ(tok.comma_id(), 267);
  EXPECT_EQ(tok.vocab_size(), 49408);
  const auto ids = tok.encode_padded("a photo of a cat");
  ASSERT_EQ(ids.size(), 77u);
  EXPECT_EQ(ids[0], 49406);
  EXPECT_EQ(std::vector<int>(ids.begin() + 1, ids.begin() + 6),
            (std::vector<int>{320, 1125, 539, 320, 2368}));
  for (size_t i = 6; i < 77; ++i) EXPECT_EQ(ids[i], 49407);
  const auto short_ids = tok.encode_padded("a photo of a cat", 4);
  EXPECT_EQ(short_ids, (std::vector<int>{49406, 320, 1125, 49407}));
  EXPECT_THROW(tok.encode_padded("x", 1), Error);
}

TEST(ClipTokenizer, TruncationKeeps75ContentTokens) {
  const auto& tok = ClipTokenizer::builtin();
  std::string prompt;
  for (int i = 0; i < 100; ++i) prompt += "cat ";
  const auto content = tok.encode(prompt);
  ASSERT_EQ(content.size(), 100u);
  const auto ids = tok.encode_padded(prompt);
  ASSERT_EQ(ids.size(), 77u);
  EXPECT_EQ(ids.front(), 49406);
  EXPECT_EQ(ids.back(), 49407);
  EXPECT_EQ(std::vector<int>(ids.begin() + 1, ids.end() - 1),
            std::vector<int>(content.begin(), content.begin() + 75));
}

TEST(ClipTokenizer, SpecialTokensAndCaseFolding) {
  const auto& tok = ClipTokenizer::builtin();
  // Literal special tokens are split out before clean-up; upper-case ones become special after
  // lower-casing through CLIP's pattern.
  EXPECT_EQ(tok.encode("<|ENDOFTEXT|>"), (std::vector<int>{49407}));
  EXPECT_EQ(tok.encode("x<|endoftext|>"), (std::vector<int>{tok.encode("x")[0], 49407}));
  // ... and the entity before a literal special token is still decoded (its piece has no '<').
  EXPECT_EQ(tok.encode("&amp;<|endoftext|>"), (std::vector<int>{tok.encode("&")[0], 49407}));
  // Contractions match case-insensitively, and LONG S counts as 's' (regex IGNORECASE).
  EXPECT_EQ(tok.tokens("IT'S"), (std::vector<std::string>{"it</w>", "'s</w>"}));
  // "'ſ" is one pre-token: its BPE pieces start with "'" that is not word-final.
  EXPECT_EQ(tok.tokens("it'\u017f"),
            (std::vector<std::string>{"it</w>", "'", "\u00c5", "\u00bf</w>"}));
}

TEST(ClipTokenizer, PreTokenizationClasses) {
  const auto& tok = ClipTokenizer::builtin();
  // Digits are single tokens, punctuation runs stick together (one pre-token "...!?", which BPE
  // cuts into "..." and "!?</w>"), whitespace separates.
  EXPECT_EQ(tok.tokens("ab12...!? c"),
            (std::vector<std::string>{"ab</w>", "1</w>", "2</w>", "...", "!?</w>", "c</w>"}));
  // An apostrophe not followed by a contraction is punctuation.
  EXPECT_EQ(tok.tokens("'x"), (std::vector<std::string>{"'</w>", "x</w>"}));
  // U+0345 is matched by no alternative of the pattern under IGNORECASE and is skipped.
  EXPECT_EQ(tok.encode("a\u0345b"), tok.encode("a b"));
}

TEST(ClipTokenizer, InvalidUtf8IsAnError) {
  const auto& tok = ClipTokenizer::builtin();
  for (const std::string& bad :
       {std::string("caf\xC3"), std::string("\xFF"), std::string("\xED\xA0\x80"),
        std::string("\xC0\xAF"), std::string("a\xE2\x82")}) {
    try {
      tok.encode(bad);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("prompt: text: expected valid UTF-8, found byte 0x"),
                std::string::npos)
          << e.what();
    }
  }
}

TEST(ClipTokenizer, ConstructedFromTextEqualsBuiltin) {
  const ClipTokenizer tok(builtin_clip_vocab_json(), builtin_clip_merges_txt());
  EXPECT_EQ(tok.encode("a very long prompt about a castle"),
            ClipTokenizer::builtin().encode("a very long prompt about a castle"));
}

std::string error_of(std::string_view vocab, std::string_view merges) {
  try {
    ClipTokenizer tok(vocab, merges, "model.gguf");
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(ClipTokenizer, BadVocabularyMessages) {
  const std::string merges(builtin_clip_merges_txt());
  EXPECT_NE(error_of("{not json", merges)
                .find("model.gguf: vocab.json: expected a JSON object mapping tokens to ids"),
            std::string::npos);
  EXPECT_NE(error_of("[1,2]", merges).find("expected a non-empty JSON object"), std::string::npos);
  EXPECT_NE(error_of(R"({"a": "x"})", merges)
                .find("vocab.json: \"a\": expected an integer id, found \"x\""),
            std::string::npos);
  EXPECT_NE(error_of(R"({"a": 5})", merges).find("expected a unique id in 0..0, found 5"),
            std::string::npos);
  // Read as a stream (SAX): every other shape still names what it found.
  EXPECT_NE(error_of(R"(["x", {"a": 1}])", merges).find("non-empty JSON object"),
            std::string::npos);
  EXPECT_NE(
      error_of("{}", merges).find("non-empty JSON object mapping tokens to ids, found object"),
      std::string::npos);
  EXPECT_NE(error_of(R"({"a": {"b": 0}})", merges)
                .find("vocab.json: \"a\": expected an integer id, found an object"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"a": 0.5})", merges).find("\"a\": expected an integer id, found 0.5"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"a": 0} trailing)", merges)
                .find("vocab.json: expected a JSON object mapping tokens to ids, found "),
            std::string::npos);
  // A repeated token keeps its last id (json.load): ids 0 and 1 of two tokens stay dense.
  EXPECT_NE(
      error_of(R"({"a": 0, "b": 1, "a": 2})", merges).find("expected a unique id in 0..1, found 2"),
      std::string::npos);
  EXPECT_NE(error_of(R"({"a": 0})", merges).find("expected the token \"<|startoftext|>\""),
            std::string::npos);
  // Remove one byte symbol from the real vocabulary.
  auto vocab = nlohmann::json::parse(builtin_clip_vocab_json());
  const int id_a = vocab["a"];
  vocab.erase("a");
  vocab["zzz-placeholder"] = id_a;
  EXPECT_NE(error_of(vocab.dump(), merges).find("expected the token \"a\" (a byte symbol)"),
            std::string::npos);
}

TEST(ClipTokenizer, BadMergesMessages) {
  const std::string vocab(builtin_clip_vocab_json());
  EXPECT_NE(error_of(vocab, "#version: 0.2\ni n\nt h e\n")
                .find("model.gguf: merges.txt line 3: expected two symbols"),
            std::string::npos);
  EXPECT_NE(error_of(vocab, "#version: 0.2\n").find("merges.txt: expected at least one merge"),
            std::string::npos);
  // "q" + "z</w>" is not a vocabulary token.
  EXPECT_NE(error_of(vocab, "#version: 0.2\nq z</w>\n")
                .find("expected the merged token \"qz</w>\" in vocab.json"),
            std::string::npos);
}

TEST(ClipTokenizer, FewerMergesGiveSmallerPieces) {
  // With only "c a" and "ca t</w>" merged, "cat" is two tokens.
  const ClipTokenizer tok(builtin_clip_vocab_json(), "#version: 0.2\nc a\n");
  EXPECT_EQ(tok.tokens("cat"), (std::vector<std::string>{"ca", "t</w>"}));
  EXPECT_EQ(tok.token(tok.encode("cat")[0]), "ca");
  EXPECT_THROW(tok.token(-1), Error);
  EXPECT_THROW(tok.token(49408), Error);
}

// ---- clean-up (ftfy + whitespace + lower-case)

TEST(TextNormalizer, HtmlEntities) {
  EXPECT_EQ(clean("salt &amp; pepper"), "salt & pepper");
  EXPECT_EQ(clean("fish &amp;amp; chips"), "fish & chips");  // repeated until stable
  EXPECT_EQ(clean("&lt;3"), "<3");
  EXPECT_EQ(clean("caf&eacute; &#233; &#xE9; &#XE9;"), "café é é é");
  EXPECT_EQ(clean("&NTILDE;"), "ñ");  // ftfy's upper-cased entities
  EXPECT_EQ(clean("BUNDESSTRA&SZLIG;E"), "bundesstrasse");
  EXPECT_EQ(clean("&nTILDE; &amp &unknown;"), "&ntilde; &amp &unknown;");
  EXPECT_EQ(clean("&#128; &#0; &#x110000; &#59; &#12ab;"), "€ \uFFFD \uFFFD &#59; &#12ab;");
  EXPECT_EQ(clean("a&#1;b &#x7f;c"), "ab c");  // html.unescape drops invalid code points
  // A line that shows '<' is HTML: no entity is decoded there or in later lines.
  EXPECT_EQ(clean("&amp; <b>\n&amp;"), "&amp; <b> &amp;");
  EXPECT_EQ(clean("&amp;\n&amp; <b>"), "& &amp; <b>");
}

TEST(TextNormalizer, FtfyFixers) {
  EXPECT_EQ(clean("ＦＵＬＬ　ｗｉｄｔｈ"), "full width");
  EXPECT_EQ(clean("ｶﾞ"), "ガ");  // half-width kana + sound mark, then NFC
  EXPECT_EQ(clean("ﬂuﬃeﬆ ﬅ"), "fluffiest \u017ft");
  EXPECT_EQ(clean("\u201chere\u2019s\u201d \u02bcx"), "\"here's\" 'x");
  EXPECT_EQ(clean("x\x1b[36;44my\x1b[0m"), "xy");
  EXPECT_EQ(clean("a\x01\x7f\xef\xbb\xbf\xe2\x81\xaa"
                  "b"),
            "ab");                                    // controls, BOM, U+206A
  EXPECT_EQ(clean("e\u0301"), "é");                   // NFC
  EXPECT_EQ(clean("\u0085 \u0080 \u0092"), "… € '");  // C1 controls read as Windows-1252
}

TEST(TextNormalizer, WhitespaceAndLowerCase) {
  EXPECT_EQ(clean("   lots   of\twhitespace \n\n and\u3000\u00a0\u2028newlines   "),
            "lots of whitespace and newlines");
  EXPECT_EQ(clean("\x1c\x1d"
                  "a\x1e\x1f"),
            "a");  // Python's str.isspace includes U+001C..U+001F
  EXPECT_EQ(clean("ΟΔΟΣ İ Straße"), "οδος i̇ straße");  // final sigma, full case mapping
  EXPECT_EQ(clean(""), "");
}

}  // namespace
}  // namespace sdc::text
