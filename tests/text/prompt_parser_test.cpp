// A1111 prompt syntax, chunking and emphasis. Expected pieces follow A1111's
// parse_prompt_attention (its docstring examples included) step by step.
#include "text/prompt_parser.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "text/prompt_embedding.h"

namespace sdc::text {
namespace {

using Pieces = std::vector<PromptPiece>;

void expect_pieces(const std::string& prompt, const Pieces& expected) {
  SCOPED_TRACE(prompt);
  const Pieces got = parse_prompt_attention(prompt);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].text, expected[i].text) << "piece " << i;
    EXPECT_DOUBLE_EQ(got[i].weight, expected[i].weight) << "piece " << i;
  }
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(PromptParser, BasicSyntax) {
  expect_pieces(
      "a (b) [c] (d:1.5) \\(e\\)",
      {{"a ", 1}, {"b", 1.1}, {" ", 1}, {"c", 1 / 1.1}, {" ", 1}, {"d", 1.5}, {" (e)", 1}});
  expect_pieces("normal text", {{"normal text", 1}});
  expect_pieces("an (important) word", {{"an ", 1}, {"important", 1.1}, {" word", 1}});
  expect_pieces("(unnecessary)(parens)", {{"unnecessaryparens", 1.1}});
  expect_pieces("\\(literal\\]", {{"(literal]", 1}});
  expect_pieces("", {{"", 1}});
}

TEST(PromptParser, NestingMultiplies) {
  expect_pieces("((a))", {{"a", 1.1 * 1.1}});
  EXPECT_EQ(parse_prompt_attention("((a))")[0].weight,
            1.1 * 1.1);  // exactly Python's 1.2100000000000002
  expect_pieces("[[a]:2]",
                {{"a", 1 / 1.1 / 1.1}, {":2", 1 / 1.1}});  // ":2]" is no weight: not inside ( )
  // A1111's docstring example, with its exact float results.
  const Pieces got = parse_prompt_attention("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).");
  const Pieces expected = {{"a ", 1.0},      {"house", 1.5730000000000004},
                           {" ", 1.1},       {"on", 1.0},
                           {" a ", 1.1},     {"hill", 0.55},
                           {", sun, ", 1.1}, {"sky", 1.4641000000000006},
                           {".", 1.1}};
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].text, expected[i].text);
    EXPECT_EQ(got[i].weight, expected[i].weight) << got[i].text;  // bit-exact double arithmetic
  }
}

TEST(PromptParser, ExplicitWeights) {
  expect_pieces("(a: 1.5 )", {{"a", 1.5}});  // spaces around the number
  expect_pieces("(a:+.5)", {{"a", 0.5}});
  expect_pieces("(a:1.)", {{"a", 1.0}});
  expect_pieces("(a:-1)", {{"a", -1.0}});
  expect_pieces("(a:\u0661.\u0665)",
                {{"a", 1.5}});             // Python's \d and float() take any decimal digit
  expect_pieces("a:b", {{"a:b", 1}});      // a lone ':' is text
  expect_pieces(":1.5)", {{":1.5)", 1}});  // a weight outside ( ) is text
  EXPECT_EQ(
      error_of([] { parse_prompt_attention("x (a:1.2.3)"); }),
      "prompt: emphasis weight: expected a number such as 1.2 in (text:1.2), found \"1.2.3\"");
  EXPECT_EQ(error_of([] { parse_prompt_attention("(a:.)"); }),
            "prompt: emphasis weight: expected a number such as 1.2 in (text:1.2), found \".\"");
}

TEST(PromptParser, UnbalancedAndEscapes) {
  expect_pieces("(a", {{"a", 1.1}});
  expect_pieces("[a", {{"a", 1 / 1.1}});
  expect_pieces("(a]", {{"a]", 1.1}});
  expect_pieces("]a)", {{"]a)", 1}});
  // \\ is a backslash; a lone backslash disappears.
  expect_pieces("a\\b\\\\c\\", {{"ab\\c", 1}});
  EXPECT_NE(error_of([] {
              parse_prompt_attention("(a\xFF)");
            }).find("prompt: text: expected valid UTF-8"),
            std::string::npos);
}

TEST(PromptParser, Break) {
  expect_pieces("(a:1.2) BREAK b", {{"a", 1.2}, {"", 1}, {"BREAK", -1}, {"b", 1}});
  expect_pieces("a,BREAK,b", {{"a,", 1}, {"BREAK", -1}, {",b", 1}});
  expect_pieces("a BREAK BREAK b", {{"a", 1}, {"BREAK", -1}, {"", 1}, {"BREAK", -1}, {"b", 1}});
  expect_pieces("BREAK", {{"", 1}, {"BREAK", -1}, {"", 1}});
  expect_pieces("xBREAK y", {{"xBREAK y", 1}});  // not a word of its own
  // Inside brackets BREAK's -1 is multiplied too, so A1111 no longer treats it as a break.
  expect_pieces("(a BREAK b)", {{"a", 1.1}, {"BREAK", -1.1}, {"b", 1.1}});
  EXPECT_TRUE(parse_prompt_attention("a BREAK b")[1].is_break());
  EXPECT_FALSE(parse_prompt_attention("(a BREAK b)")[1].is_break());
}

// ---- chunking

const ClipTokenizer& tok() {
  return ClipTokenizer::builtin();
}

std::string repeat(const std::string& word, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += word + " ";
  return s;
}

// The content ids of a chunk (between BOS and the first EOS of the padding).
std::vector<int> content(const PromptChunk& c) {
  std::vector<int> out;
  for (int i = 1; i < kChunkLength - 1 && c.ids[i] != tok().eos_id(); ++i) out.push_back(c.ids[i]);
  return out;
}

void expect_well_formed(const PromptChunks& p) {
  ASSERT_FALSE(p.chunks.empty());
  for (const auto& c : p.chunks) {
    EXPECT_EQ(c.ids.front(), tok().bos_id());
    EXPECT_EQ(c.ids.back(), tok().eos_id());
    EXPECT_EQ(c.weights.front(), 1.0f);
    EXPECT_EQ(c.weights.back(), 1.0f);
    for (size_t i = content(c).size() + 1; i < kChunkLength; ++i) {
      EXPECT_EQ(c.ids[i], tok().eos_id());
      EXPECT_EQ(c.weights[i], 1.0f);
    }
  }
}

TEST(PromptChunking, EmptyPromptIsOneEmptyChunk) {
  const PromptChunks p = tokenize_prompt(tok(), "");
  ASSERT_EQ(p.chunks.size(), 1u);
  EXPECT_EQ(p.tokens, 0);
  EXPECT_EQ(p.chunks[0].ids, empty_chunk(tok()).ids);
  EXPECT_EQ(p.chunks[0].weights, empty_chunk(tok()).weights);
  EXPECT_EQ(p.flat_ids(), tok().encode_padded(""));
}

TEST(PromptChunking, ShortPromptMatchesPaddedEncoding) {
  const std::string prompt = "a photo of a cat";
  const PromptChunks p = tokenize_prompt(tok(), prompt);
  ASSERT_EQ(p.chunks.size(), 1u);
  EXPECT_EQ(p.flat_ids(), tok().encode_padded(prompt));
  EXPECT_EQ(p.tokens, 5);
  for (float w : p.flat_weights()) EXPECT_EQ(w, 1.0f);
}

TEST(PromptChunking, WeightsFollowTokens) {
  const PromptChunks p = tokenize_prompt(tok(), "(red car:1.5) on [the street]");
  ASSERT_EQ(p.chunks.size(), 1u);
  const auto& c = p.chunks[0];
  EXPECT_EQ(content(c), tok().encode("red car on the street"));
  const std::vector<float> expected = {
      1.0f, 1.5f, 1.5f, 1.0f, static_cast<float>(1 / 1.1), static_cast<float>(1 / 1.1), 1.0f};
  EXPECT_EQ(std::vector<float>(c.weights.begin(), c.weights.begin() + 7), expected);
  // Emphasis off: the brackets are text.
  const PromptChunks plain = tokenize_prompt(tok(), "(red car:1.5)", {.emphasis = false});
  EXPECT_EQ(content(plain.chunks[0]), tok().encode("(red car:1.5)"));
  for (float w : plain.flat_weights()) EXPECT_EQ(w, 1.0f);
}

TEST(PromptChunking, ExactlyFullChunk) {
  EXPECT_EQ(tokenize_prompt(tok(), repeat("cat", 75)).chunks.size(), 1u);
  const PromptChunks p = tokenize_prompt(tok(), repeat("cat", 76));
  ASSERT_EQ(p.chunks.size(), 2u);
  EXPECT_EQ(content(p.chunks[0]).size(), 75u);
  EXPECT_EQ(content(p.chunks[1]).size(), 1u);
}

TEST(PromptChunking, LongPromptLosesNothing) {
  std::string prompt;
  const char* words[] = {"castle", "on",       "a",      "hill",   "at",
                         "sunset", "dramatic", "clouds", "golden", "light"};
  for (int i = 0; i < 175; ++i) prompt += std::string(words[i % 10]) + ((i % 7 == 6) ? ", " : " ");
  const std::vector<int> all = tok().encode(prompt);
  ASSERT_EQ(all.size(), 200u);  // 175 words and 25 commas
  const PromptChunks p = tokenize_prompt(tok(), prompt);
  EXPECT_EQ(p.chunks.size(), 3u);
  expect_well_formed(p);
  // With a comma every 8 tokens, each full chunk was cut back to end on a comma.
  EXPECT_LT(content(p.chunks[0]).size(), 75u);
  EXPECT_EQ(content(p.chunks[0]).back(), tok().comma_id());
  std::vector<int> joined;
  for (const auto& c : p.chunks) {
    const auto part = content(c);
    joined.insert(joined.end(), part.begin(), part.end());
  }
  EXPECT_EQ(joined, all);
  EXPECT_EQ(p.tokens, static_cast<int>(all.size()));
}

TEST(PromptChunking, CommaBacktracking) {
  // 70 tokens, a comma (token 71), then 10 more: when the chunk is full (comma + 4 tokens after
  // it) the 5 tokens after the comma are only 5 back, so the chunk ends after the comma.
  const std::string prompt = repeat("cat", 70) + ", " + repeat("dog", 10);
  const int cat = tok().encode("cat")[0], dog = tok().encode("dog")[0];
  const PromptChunks p = tokenize_prompt(tok(), prompt);
  ASSERT_EQ(p.chunks.size(), 2u);
  expect_well_formed(p);
  std::vector<int> first(70, cat);
  first.push_back(tok().comma_id());
  EXPECT_EQ(content(p.chunks[0]), first);
  EXPECT_EQ(content(p.chunks[1]), std::vector<int>(10, dog));

  // Switched off: the chunk is cut at 75 tokens.
  const PromptChunks hard = tokenize_prompt(tok(), prompt, {.comma_backtrack = 0});
  ASSERT_EQ(hard.chunks.size(), 2u);
  EXPECT_EQ(content(hard.chunks[0]).size(), 75u);
  EXPECT_EQ(content(hard.chunks[1]), std::vector<int>(6, dog));

  // A comma more than 20 tokens back does not move anything.
  const PromptChunks far = tokenize_prompt(tok(), repeat("cat", 50) + ", " + repeat("dog", 40));
  ASSERT_EQ(far.chunks.size(), 2u);
  EXPECT_EQ(content(far.chunks[0]).size(), 75u);
  EXPECT_EQ(content(far.chunks[1]).size(), 16u);

  // Exactly 20 back still moves (75 - 55 = 20).
  const PromptChunks edge = tokenize_prompt(tok(), repeat("cat", 55) + ", " + repeat("dog", 30));
  ASSERT_EQ(edge.chunks.size(), 2u);
  EXPECT_EQ(content(edge.chunks[0]).size(), 56u);
  EXPECT_EQ(content(edge.chunks[1]).size(), 30u);
}

TEST(PromptChunking, BreakStartsAChunk) {
  const int a = tok().encode("a")[0], b = tok().encode("b")[0];
  PromptChunks p = tokenize_prompt(tok(), "a BREAK b");
  ASSERT_EQ(p.chunks.size(), 2u);
  EXPECT_EQ(content(p.chunks[0]), std::vector<int>{a});
  EXPECT_EQ(content(p.chunks[1]), std::vector<int>{b});
  EXPECT_EQ(tokenize_prompt(tok(), "a BREAK").chunks.size(), 1u);  // nothing after the last break
  EXPECT_EQ(tokenize_prompt(tok(), "BREAK").chunks.size(), 1u);
  p = tokenize_prompt(tok(), "a BREAK BREAK b");
  ASSERT_EQ(p.chunks.size(), 3u);
  EXPECT_EQ(p.chunks[1].ids, empty_chunk(tok()).ids);
  // Inside brackets it is text (weighted 1.1 like its neighbours).
  p = tokenize_prompt(tok(), "(a BREAK b)");
  ASSERT_EQ(p.chunks.size(), 1u);
  EXPECT_EQ(content(p.chunks[0]), tok().encode("a BREAK b"));
}

TEST(PromptChunking, TenThousandTokens) {
  const std::string prompt = repeat("cat", 10000);
  const PromptChunks p = tokenize_prompt(tok(), prompt);
  EXPECT_EQ(p.tokens, 10000);
  EXPECT_EQ(p.chunks.size(), 134u);  // ceil(10000 / 75)
  expect_well_formed(p);
  EXPECT_EQ(p.flat_ids().size(), 134u * 77u);
  EXPECT_EQ(
      error_of([&] { tokenize_prompt(tok(), prompt, {.max_chunks = 3}); }),
      "prompt: length: expected at most 3 chunks of 75 tokens, found 10000 tokens in 134 chunks");
  EXPECT_EQ(tokenize_prompt(tok(), repeat("cat", 225), {.max_chunks = 3}).chunks.size(), 3u);
  EXPECT_EQ(error_of([] { tokenize_prompt(tok(), "x", {.comma_backtrack = 76}); }),
            "prompt options: comma_backtrack: expected 0..75, found 76");
  EXPECT_EQ(error_of([] { tokenize_prompt(tok(), "x", {.max_chunks = -1}); }),
            "prompt options: max_chunks: expected 0 (no limit) or more, found -1");
}

TEST(PromptChunking, PadPositiveAndNegativeToSameLength) {
  PromptChunks positive = tokenize_prompt(tok(), repeat("cat", 160));
  PromptChunks negative = tokenize_prompt(tok(), "blurry");
  ASSERT_EQ(positive.chunks.size(), 3u);
  pad_to_same_length(positive, negative, tok());
  ASSERT_EQ(negative.chunks.size(), 3u);
  EXPECT_EQ(content(negative.chunks[0]), tok().encode("blurry"));
  EXPECT_EQ(negative.chunks[1].ids, empty_chunk(tok()).ids);
  EXPECT_EQ(std::vector<int>(negative.chunks[2].ids.begin(), negative.chunks[2].ids.end()),
            tok().encode_padded(""));
  pad_to_same_length(negative, positive, tok());  // already equal: unchanged
  EXPECT_EQ(positive.chunks.size(), 3u);
  EXPECT_EQ(negative.chunks.size(), 3u);
}

// ---- emphasis

TEST(Emphasis, RestoresTheMeanAndKeepsRatios) {
  const int tokens = 77, channels = 16;
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.3f, 1.0f);
  std::vector<float> z(tokens * channels);
  for (float& v : z) v = dist(rng);
  std::vector<float> w(tokens, 1.0f);
  w[1] = 1.5f, w[2] = 1.21f, w[3] = 0.5f, w[10] = 1 / 1.1f;
  const std::vector<float> original = z;
  apply_emphasis(z.data(), tokens, channels, w.data());
  double before = 0, after = 0;
  for (size_t i = 0; i < z.size(); ++i) before += original[i], after += z[i];
  EXPECT_NEAR(after / z.size(), before / z.size(), 1e-6 * std::abs(before / z.size()));
  // Every value is scaled by weight × one common factor.
  double scale = 0, weighted = 0;
  for (size_t i = 0; i < z.size(); ++i) weighted += double(original[i]) * w[i / channels];
  scale = before / weighted;
  for (size_t i = 0; i < z.size(); ++i)
    EXPECT_NEAR(z[i], original[i] * w[i / channels] * scale, 1e-5 * std::abs(original[i]) + 1e-7)
        << i;
  EXPECT_NE(scale, 1.0);
}

TEST(Emphasis, UnitWeightsChangeNothing) {
  std::vector<float> z = {1.0f, -2.0f, 3.5f, 0.25f, 7.0f, -1.0f};
  const std::vector<float> original = z;
  const std::vector<float> w = {1.0f, 1.0f, 1.0f};
  apply_emphasis(z.data(), 3, 2, w.data());
  EXPECT_EQ(z, original);
}

TEST(Emphasis, Errors) {
  std::vector<float> z = {1.0f, -1.0f, 2.0f, 0.0f};  // weighted by (1, 0): mean 0
  const std::vector<float> w = {1.0f, 0.0f};
  EXPECT_EQ(error_of([&] { apply_emphasis(z.data(), 2, 2, w.data()); }),
            "prompt: emphasis: expected weights that keep the embedding's mean non-zero, found "
            "mean 0 after weighting");
  EXPECT_EQ(error_of([&] { apply_emphasis(z.data(), 0, 2, w.data()); }),
            "prompt: emphasis: expected a positive number of tokens and channels, found 0 × 2");
}

}  // namespace
}  // namespace sdc::text
