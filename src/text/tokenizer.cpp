// CLIP BPE tokenizer: vocabulary loading, pre-tokenization with CLIP's pattern, byte-level BPE.
#include "text/tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <limits>

#include "common/error.h"
#include "text/builtin_vocab.h"
#include "text/text_normalizer.h"
#include "text/unicode_text.h"

namespace sdc::text {

namespace {

constexpr std::u32string_view kBosText = U"<|startoftext|>";
constexpr std::u32string_view kEosText = U"<|endoftext|>";
constexpr std::string_view kWordEnd = "</w>";
// openai/CLIP and transformers read merges.txt as lines[1 : 49152 - 256 - 2 + 1].
constexpr size_t kMaxMerges = 49152 - 256 - 2;

// GPT-2/CLIP bytes_to_unicode: printable Latin-1 bytes stand for themselves, the others are
// moved to U+0100 and up, so that every byte is a visible character.
std::array<char32_t, 256> bytes_to_unicode() {
  std::array<char32_t, 256> map{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable =
        (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    map[b] = printable ? static_cast<char32_t>(b) : next++;
  }
  return map;
}

// One character of CLIP's pattern compared as the `regex` module does under IGNORECASE (the
// text is already lower-case; U+017F LONG S folds to 's').
bool same_ignoring_case(char32_t c, char ascii) {
  if (c == static_cast<char32_t>(ascii)) return true;
  if (ascii >= 'a' && ascii <= 'z' && c == static_cast<char32_t>(ascii - 'a' + 'A')) return true;
  return ascii == 's' && c == 0x017F;
}

bool matches_at(std::u32string_view text, size_t at, std::string_view pattern) {
  if (text.size() - at < pattern.size()) return false;
  for (size_t k = 0; k < pattern.size(); ++k)
    if (!same_ignoring_case(text[at + k], pattern[k])) return false;
  return true;
}

// U+0345 COMBINING GREEK YPOGEGRAMMENI has the upper-case form U+0399, a letter, so under
// IGNORECASE the `regex` module matches it with neither [\p{L}] nor [^\s\p{L}\p{N}]: it is
// skipped like whitespace.
constexpr char32_t kYpogegrammeni = 0x0345;

bool is_other(char32_t c) {
  return !is_letter(c) && !is_number(c) && !is_unicode_space(c) && c != kYpogegrammeni;
}

// re.findall(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|
//            [^\s\p{L}\p{N}]+", text, re.IGNORECASE) as (start, length) spans.
template <typename Emit>
void pre_tokenize(std::u32string_view text, Emit&& emit) {
  static constexpr std::string_view kContractions[] = {"s", "t", "re", "ve", "m", "ll", "d"};
  size_t i = 0;
  while (i < text.size()) {
    const char32_t c = text[i];
    if (c == U'<') {
      if (matches_at(text, i, "<|startoftext|>")) {
        emit(i, kBosText.size()), i += kBosText.size();
        continue;
      }
      if (matches_at(text, i, "<|endoftext|>")) {
        emit(i, kEosText.size()), i += kEosText.size();
        continue;
      }
    }
    if (c == U'\'') {
      bool matched = false;
      for (std::string_view suffix : kContractions) {
        if (matches_at(text, i + 1, suffix)) {
          emit(i, 1 + suffix.size()), i += 1 + suffix.size();
          matched = true;
          break;
        }
      }
      if (matched) continue;
    }
    size_t j = i + 1;
    if (is_letter(c)) {
      while (j < text.size() && is_letter(text[j])) ++j;
      emit(i, j - i);
    } else if (is_number(c)) {
      emit(i, 1);
    } else if (is_other(c)) {
      while (j < text.size() && is_other(text[j])) ++j;
      emit(i, j - i);
    }
    i = j;
  }
}

// One member of vocab.json: its token's text in VocabReader::text, and its id.
struct VocabEntry {
  std::uint32_t start, length;
  std::int64_t id;
};

// vocab.json's top-level object as (token, id) entries, in file order, their texts end to end.
// Any other shape throws (or is reported through top_object / top_type) with the messages of
// the vocabulary checks.
struct VocabReader {
  explicit VocabReader(const std::string& source) : source(source) {}
  const std::string& source;
  std::string text;
  std::vector<VocabEntry> entries;
  std::string name, top_type = "nothing";  // name: the member being read
  bool top_object = false;
  int depth = 0;

  // A member of the top-level object must be an integer.
  bool member() const { return depth == 1 && top_object; }
  bool value(const char* type, const std::string& shown) {
    if (depth == 0) return top_type = type, true;
    if (member()) throw Error(source, "vocab.json: \"" + name + "\"", "an integer id", shown);
    return true;
  }
  bool integer(std::int64_t v) {
    if (member()) {
      entries.push_back({std::uint32_t(text.size()), std::uint32_t(name.size()), v});
      text += name;
      return true;
    }
    return value("number", std::to_string(v));
  }
  bool null() { return value("null", "null"); }
  bool boolean(bool v) { return value("boolean", v ? "true" : "false"); }
  bool number_integer(std::int64_t v) { return integer(v); }
  bool number_unsigned(std::uint64_t v) {
    if (v > std::uint64_t(std::numeric_limits<std::int64_t>::max()))
      return value("number", std::to_string(v));
    return integer(std::int64_t(v));
  }
  bool number_float(double, const std::string& text) { return value("number", text); }
  bool string(std::string& v) { return value("string", nlohmann::json(v).dump()); }
  bool binary(nlohmann::json::binary_t&) { return value("binary", "binary"); }
  bool start_object(std::size_t) {
    value("object", "an object");
    if (depth == 0) top_object = true;
    return ++depth, true;
  }
  bool start_array(std::size_t) {
    value("array", "an array");
    return ++depth, true;
  }
  bool end_object() { return --depth, true; }
  bool end_array() { return --depth, true; }
  bool key(std::string& k) {
    if (member()) name = std::move(k);
    return true;
  }
  // Thrown on to the constructor, which reports every nlohmann error the same way.
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
    throw e;
  }
};

// Slots of an open-addressing table for n entries: a power of two, at least twice n, so that
// linear probes stay short.
size_t slot_count(size_t n) {
  return std::bit_ceil(std::max<size_t>(2 * n, 16));
}

size_t hash_text(std::string_view text) {
  return std::hash<std::string_view>{}(text);
}

// The high half of a multiplicative hash: every bit of both ids moves it.
size_t hash_pair(std::uint64_t key) {
  return size_t((key * 0x9E3779B97F4A7C15ull) >> 32);
}

// Linear probing in a power-of-two table of indices (-1: empty): the slot holding an index that
// is_key accepts, else the empty slot where that key belongs.
template <class Slots, class IsKey>
auto& probe(Slots& slots, size_t hash, IsKey is_key) {
  const size_t mask = slots.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask)
    if (slots[i] < 0 || is_key(slots[i])) return slots[i];
}

}  // namespace

std::string_view ClipTokenizer::text_of(int id) const {
  const auto at = static_cast<size_t>(id);
  return std::string_view(token_text_)
      .substr(token_start_[at], token_start_[at + 1] - token_start_[at]);
}

int ClipTokenizer::find_token(std::string_view token) const {
  return probe(token_slots_, hash_text(token),
               [&](std::int32_t id) { return text_of(id) == token; });
}

const ClipTokenizer::Merge* ClipTokenizer::find_merge(int left, int right) const {
  const std::uint64_t key = pair_key(left, right);
  const std::int32_t at = probe(merge_slots_, hash_pair(key),
                                [&](std::int32_t m) { return merges_[size_t(m)].pair == key; });
  return at < 0 ? nullptr : &merges_[size_t(at)];
}

ClipTokenizer::ClipTokenizer(std::string_view vocab_json, std::string_view merges_txt,
                             std::string source)
    : source_(std::move(source)) {
  // --- vocabulary: a dense map token -> id over 0..size-1, read by nlohmann's SAX parser (a
  // DOM of 49408 entries was half of the tokenizer's ~150 ms construction at every start)
  VocabReader reader(source_);
  try {
    nlohmann::json::sax_parse(vocab_json, &reader);
  } catch (const nlohmann::json::exception& e) {
    throw Error(source_, "vocab.json", "a JSON object mapping tokens to ids", e.what());
  }
  if (!reader.top_object || reader.entries.empty())
    throw Error(source_, "vocab.json", "a non-empty JSON object mapping tokens to ids",
                reader.top_type);
  // Offsets into the tokens' text are 32-bit (CLIP's is ~0.4 MB).
  if (reader.text.size() > std::numeric_limits<std::uint32_t>::max())
    throw Error(source_, "vocab.json", "under 4 GiB of token text",
                std::to_string(reader.text.size()) + " bytes");
  // A repeated token keeps its last id, as in json.load: its first entry takes the later id and
  // the later entry is dropped.
  auto& entries = reader.entries;
  auto entry_text = [&](size_t e) {
    return std::string_view(reader.text).substr(entries[e].start, entries[e].length);
  };
  std::vector<std::int32_t> slots(slot_count(entries.size()), -1);  // entry indices for now
  std::vector<bool> repeated(entries.size(), false);
  size_t size = 0;
  for (size_t e = 0; e < entries.size(); ++e) {
    std::int32_t& slot = probe(slots, hash_text(entry_text(e)), [&](std::int32_t f) {
      return entry_text(size_t(f)) == entry_text(e);
    });
    if (slot >= 0) {
      entries[size_t(slot)].id = entries[e].id;
      repeated[e] = true;
    } else {
      slot = std::int32_t(e);
      ++size;
    }
  }
  // The ids must number the tokens 0..size-1.
  std::vector<std::int32_t> entry_of_id(size, -1);
  for (size_t e = 0; e < entries.size(); ++e) {
    if (repeated[e]) continue;
    const std::int64_t id = entries[e].id;
    if (id < 0 || size_t(id) >= size || entry_of_id[size_t(id)] >= 0)
      throw Error(source_, "vocab.json: \"" + std::string(entry_text(e)) + "\"",
                  "a unique id in 0.." + std::to_string(size - 1), std::to_string(id));
    entry_of_id[size_t(id)] = std::int32_t(e);
  }
  token_text_.reserve(reader.text.size());
  token_start_.reserve(size + 1);
  for (const std::int32_t e : entry_of_id) {
    token_start_.push_back(std::uint32_t(token_text_.size()));
    token_text_ += entry_text(size_t(e));
  }
  token_start_.push_back(std::uint32_t(token_text_.size()));
  // The same slots, now holding ids: a token's slot depends only on its text.
  for (std::int32_t& slot : slots)
    if (slot >= 0) slot = std::int32_t(entries[size_t(slot)].id);
  token_slots_ = std::move(slots);
  auto require = [&](const std::string& token, const char* why) {
    const int id = find_token(token);
    if (id < 0)
      throw Error(source_, "vocab.json", std::string("the token \"") + token + "\" (" + why + ")",
                  "no such token");
    return id;
  };
  bos_id_ = require(u32_to_utf8(kBosText), "start of text");
  eos_id_ = require(u32_to_utf8(kEosText), "end of text");
  comma_id_ = find_token(",</w>");
  const auto byte_chars = bytes_to_unicode();
  for (int b = 0; b < 256; ++b) {
    std::string symbol;
    append_utf8(symbol, byte_chars[b]);
    byte_id_[b] = require(symbol, "a byte symbol");
    byte_end_id_[b] = require(symbol + std::string(kWordEnd), "a word-final byte symbol");
  }

  // --- merges: Python's text.strip().split("\n")[1 : 1 + kMaxMerges]
  std::string_view rest = merges_txt;
  auto is_ws = [](char ch) {
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\f' || ch == '\v';
  };
  while (!rest.empty() && is_ws(rest.front())) rest.remove_prefix(1);
  while (!rest.empty() && is_ws(rest.back())) rest.remove_suffix(1);
  size_t line_no = 0, rank = 0;
  std::string merged;
  const size_t lines = size_t(std::count(rest.begin(), rest.end(), '\n')) + 1;
  merges_.reserve(std::min(lines, kMaxMerges));
  merge_slots_.assign(slot_count(std::min(lines, kMaxMerges)), -1);
  while (!rest.empty() && rank < kMaxMerges) {
    const size_t nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    if (++line_no == 1) continue;  // "#version: 0.2"
    std::string_view parts[2];
    size_t count = 0;
    for (size_t p = 0; p < line.size();) {
      while (p < line.size() && is_ws(line[p])) ++p;
      size_t q = p;
      while (q < line.size() && !is_ws(line[q])) ++q;
      if (q > p && count++ < 2) parts[count - 1] = line.substr(p, q - p);
      p = q;
    }
    if (count != 2)
      throw Error(source_, "merges.txt line " + std::to_string(line_no),
                  "two symbols separated by a space", "\"" + std::string(line) + "\"");
    const int this_rank = static_cast<int>(rank++);
    const int left = find_token(parts[0]), right = find_token(parts[1]);
    if (left < 0 || right < 0) continue;  // can never apply
    merged.assign(parts[0]).append(parts[1]);
    const int result = find_token(merged);
    if (result < 0)
      throw Error(source_, "merges.txt line " + std::to_string(line_no),
                  "the merged token \"" + merged + "\" in vocab.json", "no such token");
    // A repeated pair takes its later rank, as Python's dict(zip(merges, range(...))) does.
    const std::uint64_t key = pair_key(left, right);
    std::int32_t& slot = probe(merge_slots_, hash_pair(key),
                               [&](std::int32_t m) { return merges_[size_t(m)].pair == key; });
    if (slot < 0) {
      slot = std::int32_t(merges_.size());
      merges_.push_back({key, this_rank, result});
    } else {
      merges_[size_t(slot)].rank = this_rank;
      merges_[size_t(slot)].result = result;
    }
  }
  if (rank == 0)
    throw Error(source_, "merges.txt", "at least one merge after the version line", "none");
}

const ClipTokenizer& ClipTokenizer::builtin() {
  static const ClipTokenizer tokenizer(builtin_clip_vocab_json(), builtin_clip_merges_txt(),
                                       "built-in CLIP vocabulary");
  return tokenizer;
}

std::string_view ClipTokenizer::token(int id) const {
  if (id < 0 || id >= vocab_size())
    throw Error(source_, "token id", "0.." + std::to_string(vocab_size() - 1), std::to_string(id));
  return text_of(id);
}

void ClipTokenizer::bpe(std::string_view word, std::vector<int>& out) const {
  if (word == "<|startoftext|>") return out.push_back(bos_id_);  // transformers' pre-seeded cache
  if (word == "<|endoftext|>") return out.push_back(eos_id_);
  {
    std::lock_guard lock(cache_mutex_);
    if (const auto it = cache_.find(std::string(word)); it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int> symbols(word.size());
  for (size_t k = 0; k < word.size(); ++k) {
    const auto b = static_cast<unsigned char>(word[k]);
    symbols[k] = k + 1 == word.size() ? byte_end_id_[b] : byte_id_[b];
  }
  std::vector<int> merged;
  merged.reserve(symbols.size());
  while (symbols.size() > 1) {
    // The adjacent pair with the lowest rank ...
    const Merge* best = nullptr;
    int best_left = 0, best_right = 0;
    for (size_t k = 0; k + 1 < symbols.size(); ++k) {
      const Merge* m = find_merge(symbols[k], symbols[k + 1]);
      if (m && (!best || m->rank < best->rank)) {
        best = m;
        best_left = symbols[k], best_right = symbols[k + 1];
      }
    }
    if (!best) break;
    // ... is merged wherever it occurs, left to right.
    merged.clear();
    for (size_t k = 0; k < symbols.size(); ++k) {
      if (k + 1 < symbols.size() && symbols[k] == best_left && symbols[k + 1] == best_right) {
        merged.push_back(best->result);
        ++k;
      } else {
        merged.push_back(symbols[k]);
      }
    }
    symbols.swap(merged);
  }
  out.insert(out.end(), symbols.begin(), symbols.end());
  std::lock_guard lock(cache_mutex_);
  if (cache_.size() >= kMaxCacheEntries) cache_.clear();
  cache_.emplace(std::string(word), std::move(symbols));
}

void ClipTokenizer::encode_piece(std::u32string_view piece, std::vector<int>& out) const {
  const std::u32string text = clip_clean_text(piece);
  std::string word;
  pre_tokenize(text, [&](size_t start, size_t length) {
    word.clear();
    for (size_t k = start; k < start + length; ++k) append_utf8(word, text[k]);
    bpe(word, out);
  });
}

std::vector<int> ClipTokenizer::encode(std::string_view text) const {
  const std::u32string u = utf8_to_u32(text, "prompt");
  std::vector<int> out;
  // transformers first splits out the literal special tokens (case-sensitive), then cleans and
  // tokenizes the text between them piece by piece.
  size_t pos = 0;
  while (pos <= u.size()) {
    const size_t bos = u.find(kBosText, pos), eos = u.find(kEosText, pos);
    const size_t next = std::min(bos, eos);
    const std::u32string_view piece = std::u32string_view(u).substr(
        pos, next == std::u32string::npos ? u.size() - pos : next - pos);
    if (!piece.empty()) encode_piece(piece, out);
    if (next == std::u32string::npos) break;
    out.push_back(next == bos ? bos_id_ : eos_id_);
    pos = next + (next == bos ? kBosText.size() : kEosText.size());
  }
  return out;
}

std::vector<int> ClipTokenizer::encode_padded(std::string_view text, int max_len) const {
  if (max_len < 2)
    throw Error(source_, "max_length", "at least 2 (start and end of text)",
                std::to_string(max_len));
  std::vector<int> content = encode(text);
  const size_t keep = std::min(content.size(), static_cast<size_t>(max_len - 2));
  std::vector<int> ids;
  ids.reserve(static_cast<size_t>(max_len));
  ids.push_back(bos_id_);
  ids.insert(ids.end(), content.begin(), content.begin() + static_cast<std::ptrdiff_t>(keep));
  ids.resize(static_cast<size_t>(max_len), eos_id_);  // the end token, then padding with it
  return ids;
}

std::vector<std::string> ClipTokenizer::tokens(std::string_view text) const {
  std::vector<std::string> out;
  for (int id : encode(text)) out.emplace_back(token(id));
  return out;
}

}  // namespace sdc::text
