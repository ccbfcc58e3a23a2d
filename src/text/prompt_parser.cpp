// A1111 prompt attention syntax and chunking. The scanner follows the alternatives of A1111's
// re_attention in their order; the BREAK splitter follows re_break = r"\s*\bBREAK\b\s*" with
// Python's Unicode \s and \w.
#include "text/prompt_parser.h"

#include <algorithm>
#include <charconv>

#include "common/error.h"
#include "text/unicode_text.h"

namespace sdc::text {

namespace {

constexpr double kRoundMultiplier = 1.1;
constexpr double kSquareMultiplier = 1 / 1.1;

// re.split(r"\s*\bBREAK\b\s*", text): the parts between BREAK keywords.
std::vector<std::u32string_view> split_on_break(std::u32string_view text) {
  static constexpr std::u32string_view kBreak = U"BREAK";
  std::vector<std::u32string_view> parts;
  size_t pos = 0, search = 0;
  while (true) {
    const size_t k = text.find(kBreak, search);
    if (k == std::u32string_view::npos) break;
    const size_t after = k + kBreak.size();
    const bool word_start = k == 0 || !py_isword(text[k - 1]);
    const bool word_end = after == text.size() || !py_isword(text[after]);
    if (!word_start || !word_end) {
      search = k + 1;
      continue;
    }
    size_t start = k, end = after;
    while (start > pos && py_isspace(text[start - 1])) --start;
    while (end < text.size() && py_isspace(text[end])) ++end;
    parts.push_back(text.substr(pos, start - pos));
    pos = search = end;
  }
  parts.push_back(text.substr(pos));
  return parts;
}

// Alternative `:\s*([+-]?[.\d]+)\s*\)` at `at` (text[at] == ':'): the end of the match and the
// number text in ASCII, or false.
bool match_weight(std::u32string_view text, size_t at, size_t& end, std::string& number) {
  size_t i = at + 1;
  while (i < text.size() && py_isspace(text[i])) ++i;
  number.clear();
  if (i < text.size() && (text[i] == U'+' || text[i] == U'-'))
    number.push_back(static_cast<char>(text[i++]));
  const size_t digits_start = i;
  for (; i < text.size(); ++i) {
    if (text[i] == U'.') {
      number.push_back('.');
    } else if (const int d = py_decimal_value(text[i]); d >= 0) {
      number.push_back(static_cast<char>('0' + d));  // Python's float() reads any decimal digit
    } else {
      break;
    }
  }
  if (i == digits_start) return false;
  while (i < text.size() && py_isspace(text[i])) ++i;
  if (i == text.size() || text[i] != U')') return false;
  end = i + 1;
  return true;
}

// Python's float() on what the weight pattern accepted: sign, digits and dots.
double parse_weight(const std::string& number) {
  std::string_view s = number;
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  const size_t dots = std::count(s.begin(), s.end(), '.');
  const bool has_digit = s.find_first_of("0123456789") != std::string_view::npos;
  double value = 0;
  if (dots <= 1 && has_digit) {
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec == std::errc() && ptr == s.data() + s.size()) return value;
  }
  throw Error("prompt", "emphasis weight", "a number such as 1.2 in (text:1.2)",
              "\"" + number + "\"");
}

}  // namespace

std::vector<PromptPiece> parse_prompt_attention(std::string_view prompt) {
  const std::u32string text = utf8_to_u32(prompt, "prompt");
  struct Piece {
    std::u32string text;
    double weight;
  };
  std::vector<Piece> res;
  std::vector<size_t> round_brackets, square_brackets;
  auto multiply_range = [&](size_t start, double multiplier) {
    for (size_t p = start; p < res.size(); ++p) res[p].weight *= multiplier;
  };
  auto append_text = [&](std::u32string_view t) {
    const auto parts = split_on_break(t);
    for (size_t k = 0; k < parts.size(); ++k) {
      if (k > 0) res.push_back({U"BREAK", -1.0});
      res.push_back({std::u32string(parts[k]), 1.0});
    }
  };
  static constexpr std::u32string_view kSpecial = U"\\()[]:";
  static constexpr std::u32string_view kEscapable = U"()[]\\";
  size_t i = 0;
  std::string number;
  while (i < text.size()) {
    const char32_t c = text[i];
    size_t end = 0;
    if (c == U'\\') {
      // \( \) \[ \] \\ give the character; a lone backslash gives nothing.
      if (i + 1 < text.size() && kEscapable.find(text[i + 1]) != std::u32string_view::npos) {
        res.push_back({std::u32string(1, text[i + 1]), 1.0});
        i += 2;
      } else {
        res.push_back({U"", 1.0});
        i += 1;
      }
    } else if (c == U'(') {
      round_brackets.push_back(res.size());
      ++i;
    } else if (c == U'[') {
      square_brackets.push_back(res.size());
      ++i;
    } else if (c == U':' && match_weight(text, i, end, number)) {
      if (!round_brackets.empty()) {
        const double weight = parse_weight(number);
        multiply_range(round_brackets.back(), weight);
        round_brackets.pop_back();
      } else {
        append_text(std::u32string_view(text).substr(i, end - i));
      }
      i = end;
    } else if (c == U')' && !round_brackets.empty()) {
      multiply_range(round_brackets.back(), kRoundMultiplier);
      round_brackets.pop_back();
      ++i;
    } else if (c == U']' && !square_brackets.empty()) {
      multiply_range(square_brackets.back(), kSquareMultiplier);
      square_brackets.pop_back();
      ++i;
    } else if (c == U')' || c == U']' || c == U':') {
      append_text(std::u32string_view(text).substr(i, 1));  // unmatched: plain text
      ++i;
    } else {
      size_t j = i + 1;
      while (j < text.size() && kSpecial.find(text[j]) == std::u32string_view::npos) ++j;
      append_text(std::u32string_view(text).substr(i, j - i));
      i = j;
    }
  }
  for (size_t pos : round_brackets) multiply_range(pos, kRoundMultiplier);
  for (size_t pos : square_brackets) multiply_range(pos, kSquareMultiplier);
  if (res.empty()) res.push_back({U"", 1.0});

  // Merge runs of identical weights.
  std::vector<PromptPiece> out;
  for (const Piece& p : res) {
    if (!out.empty() && out.back().weight == p.weight) {
      out.back().text += u32_to_utf8(p.text);
    } else {
      out.push_back({u32_to_utf8(p.text), p.weight});
    }
  }
  return out;
}

std::vector<int> PromptChunks::flat_ids() const {
  std::vector<int> out;
  out.reserve(chunks.size() * kChunkLength);
  for (const auto& c : chunks) out.insert(out.end(), c.ids.begin(), c.ids.end());
  return out;
}

std::vector<float> PromptChunks::flat_weights() const {
  std::vector<float> out;
  out.reserve(chunks.size() * kChunkLength);
  for (const auto& c : chunks) out.insert(out.end(), c.weights.begin(), c.weights.end());
  return out;
}

PromptChunk empty_chunk(const ClipTokenizer& tokenizer) {
  PromptChunk chunk;
  chunk.ids.fill(tokenizer.eos_id());
  chunk.ids[0] = tokenizer.bos_id();
  chunk.weights.fill(1.0f);
  return chunk;
}

PromptChunks tokenize_prompt(const ClipTokenizer& tokenizer, std::string_view prompt,
                             const PromptOptions& options) {
  if (options.comma_backtrack < 0 || options.comma_backtrack > kChunkTokens)
    throw Error("prompt options", "comma_backtrack", "0.." + std::to_string(kChunkTokens),
                std::to_string(options.comma_backtrack));
  if (options.max_chunks < 0)
    throw Error("prompt options", "max_chunks", "0 (no limit) or more",
                std::to_string(options.max_chunks));

  const std::vector<PromptPiece> pieces =
      options.emphasis ? parse_prompt_attention(prompt)
                       : std::vector<PromptPiece>{{std::string(prompt), 1.0}};
  PromptChunks result;
  std::vector<int> ids;
  std::vector<float> weights;
  int last_comma = -1;
  const int comma = tokenizer.comma_id();

  auto next_chunk = [&] {
    PromptChunk chunk = empty_chunk(tokenizer);
    std::copy(ids.begin(), ids.end(), chunk.ids.begin() + 1);
    std::copy(weights.begin(), weights.end(), chunk.weights.begin() + 1);
    result.chunks.push_back(chunk);
    ids.clear();
    weights.clear();
    last_comma = -1;
  };

  for (const PromptPiece& piece : pieces) {
    if (piece.is_break()) {
      next_chunk();
      continue;
    }
    const float weight = static_cast<float>(piece.weight);
    const std::vector<int> tokens = tokenizer.encode(piece.text);
    for (size_t position = 0; position < tokens.size();) {
      const int token = tokens[position];
      const int filled = static_cast<int>(ids.size());
      if (token == comma) {
        last_comma = filled;
      } else if (options.comma_backtrack != 0 && filled == kChunkTokens && last_comma != -1 &&
                 filled - last_comma <= options.comma_backtrack) {
        // The chunk is full: end it after the last comma; what followed moves to the next one.
        const auto cut = static_cast<std::ptrdiff_t>(last_comma + 1);
        std::vector<int> moved_ids(ids.begin() + cut, ids.end());
        std::vector<float> moved_weights(weights.begin() + cut, weights.end());
        ids.resize(static_cast<size_t>(cut));
        weights.resize(static_cast<size_t>(cut));
        next_chunk();
        ids = std::move(moved_ids);
        weights = std::move(moved_weights);
      }
      if (static_cast<int>(ids.size()) == kChunkTokens) next_chunk();
      size_t length = 0;
      const int found =
          options.embeddings ? options.embeddings->match(tokens, position, length) : -1;
      if (found < 0) {
        ids.push_back(token);
        weights.push_back(weight);
        ++result.tokens;
        ++position;
        continue;
      }
      const TriggerWord& word = options.embeddings->words()[static_cast<size_t>(found)];
      if (static_cast<int>(ids.size()) + word.vectors > kChunkTokens) next_chunk();
      for (int k = 0; k < word.vectors; ++k) {
        ids.push_back(word.first_id + k);
        weights.push_back(weight);
      }
      result.tokens += word.vectors;
      if (std::find(result.used_embeddings.begin(), result.used_embeddings.end(), found) ==
          result.used_embeddings.end())
        result.used_embeddings.push_back(found);
      position += length;
    }
  }
  if (!ids.empty() || result.chunks.empty()) next_chunk();

  if (options.max_chunks > 0 && static_cast<int>(result.chunks.size()) > options.max_chunks)
    throw Error("prompt", "length",
                "at most " + std::to_string(options.max_chunks) + " chunks of " +
                    std::to_string(kChunkTokens) + " tokens",
                std::to_string(result.tokens) + " tokens in " +
                    std::to_string(result.chunks.size()) + " chunks");
  return result;
}

void pad_to_same_length(PromptChunks& a, PromptChunks& b, const ClipTokenizer& tokenizer) {
  const PromptChunk empty = empty_chunk(tokenizer);
  while (a.chunks.size() < b.chunks.size()) a.chunks.push_back(empty);
  while (b.chunks.size() < a.chunks.size()) b.chunks.push_back(empty);
}

}  // namespace sdc::text
