// tokenize.cpp: sacrebleu's BLEU tokenizers ("none", "13a", "intl", "char") in C++, byte for
// byte. Each one replays the tokenizer's own sequence of substitutions, as Python's re.sub would
// apply them (leftmost match first, matches never overlap), followed by str.split().
//
// 13a works on UTF-8 bytes directly: its patterns name ASCII characters only, plus "any
// character but a digit", and a non-ASCII character's bytes are never ASCII, so scanning bytes
// finds the same matches at the same places and copies the same characters. intl classifies
// characters by Unicode category, so it decodes to code points first, using a flag table that
// the caller builds (from the `regex` module or unicodedata) to match the Unicode version of the
// sacrebleu it agrees with. This file does not lowercase (Python's str.lower() does).
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "bleu/bleu.h"

namespace fastrnn::bleu {
namespace {

// 256-entry byte tables, built at compile time.
struct ByteTable {
  bool on[256] = {};
};
constexpr ByteTable ascii_spaces() {  // the ASCII part of Python's str.isspace()
  ByteTable t;
  for (int c = 0x09; c <= 0x0D; ++c) t.on[c] = true;
  for (int c = 0x1C; c <= 0x20; ++c) t.on[c] = true;
  return t;
}
// 13a's first pattern: the ASCII punctuation and symbols it pads with spaces (all of 0x20-0x2F
// but ' , - . and all of 0x3A-0x40, 0x5B-0x60, 0x7B-0x7E).
constexpr ByteTable separated_13a() {
  ByteTable t;
  for (int c = 0x20; c <= 0x2F; ++c) t.on[c] = c != 0x27 && c != 0x2C && c != 0x2D && c != 0x2E;
  for (int c = 0x3A; c <= 0x40; ++c) t.on[c] = true;
  for (int c = 0x5B; c <= 0x60; ++c) t.on[c] = true;
  for (int c = 0x7B; c <= 0x7E; ++c) t.on[c] = true;
  return t;
}
constexpr ByteTable kAsciiSpace = ascii_spaces();
constexpr ByteTable kSeparated = separated_13a();

// Byte length of the character at p if it is whitespace by Python's str.isspace(), else 0.
int space_len(const unsigned char* p, const unsigned char* end) {
  const unsigned c = p[0];
  if (c < 0x80) return kAsciiSpace.on[c] ? 1 : 0;
  const std::ptrdiff_t left = end - p;
  if (c == 0xC2) return (left >= 2 && (p[1] == 0x85 || p[1] == 0xA0)) ? 2 : 0;  // U+0085, U+00A0
  if (left < 3) return 0;
  if (c == 0xE1) return (p[1] == 0x9A && p[2] == 0x80) ? 3 : 0;  // U+1680
  if (c == 0xE2) {
    if (p[1] == 0x80)  // U+2000..U+200A, U+2028, U+2029, U+202F
      return ((p[2] >= 0x80 && p[2] <= 0x8A) || p[2] == 0xA8 || p[2] == 0xA9 || p[2] == 0xAF) ? 3
                                                                                              : 0;
    return (p[1] == 0x81 && p[2] == 0x9F) ? 3 : 0;  // U+205F
  }
  if (c == 0xE3) return (p[1] == 0x80 && p[2] == 0x80) ? 3 : 0;  // U+3000
  return 0;
}

bool is_space_cp(char32_t c) {
  if (c < 0x80) return kAsciiSpace.on[c];
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Byte length of the UTF-8 sequence that starts with `lead` (1 for stray continuation bytes).
int char_len(unsigned char lead) {
  if (lead < 0xC0) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

// The line without trailing whitespace (str.rstrip()).
std::string_view rstrip(std::string_view s) {
  auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t end = s.size();
  while (end > 0) {
    const unsigned char c = p[end - 1];
    if (c < 0x80) {
      if (!kAsciiSpace.on[c]) break;
      --end;
      continue;
    }
    size_t start = end - 1;  // back to the lead byte of the last character
    while (start > 0 && (p[start] & 0xC0) == 0x80 && end - start < 4) --start;
    if (size_t(space_len(p + start, p + end)) != end - start) break;
    end = start;
  }
  return s.substr(0, end);
}

// Bytes that may start a whitespace character: ASCII whitespace, and the lead bytes of the
// multi-byte ones (U+0085, U+00A0; U+1680; U+2000..U+205F; U+3000). Everything else is part of a
// token, so scanning a token is one table lookup per byte.
constexpr ByteTable space_starts() {
  ByteTable t = ascii_spaces();
  t.on[0xC2] = t.on[0xE1] = t.on[0xE2] = t.on[0xE3] = true;
  return t;
}
constexpr ByteTable kSpaceStart = space_starts();

// str.split(): appends each whitespace-separated token to chars and its end offset to ends.
void split(const char* data, size_t size, std::string& chars, std::vector<int64_t>& ends) {
  auto* p = reinterpret_cast<const unsigned char*>(data);
  auto* end = p + size;
  while (p < end) {
    if (kSpaceStart.on[*p]) {
      const int w = space_len(p, end);
      if (w) {
        p += w;
        continue;
      }
    }
    auto* start = p++;
    while (p < end) {
      if (kSpaceStart.on[*p] && space_len(p, end)) break;
      ++p;
    }
    chars.append(reinterpret_cast<const char*>(start), size_t(p - start));
    ends.push_back(int64_t(chars.size()));
  }
}

// str.replace(from, to) of the whole of `in`, into `out`.
void replace(const std::string& in, std::string_view from, std::string_view to, std::string& out) {
  out.clear();
  size_t pos = 0;
  for (size_t hit; (hit = in.find(from.data(), pos, from.size())) != std::string::npos;
       pos = hit + from.size()) {
    out.append(in, pos, hit - pos);
    out.append(to);
  }
  out.append(in, pos, std::string::npos);
}

bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

// One left-to-right pass of a two-character pattern, as re.sub applies it: where
// match(s[i], s[i+1]), both characters are replaced by emit(...) and the scan resumes after them.
template <typename Char, typename Match, typename Emit>
void two_char_pass(const std::basic_string<Char>& in, std::basic_string<Char>& out, Match match,
                   Emit emit) {
  out.resize(2 * in.size());  // every rule at most doubles the text
  Char* o = &out[0];
  const size_t n = in.size();
  size_t i = 0;
  for (; i + 1 < n; ++i) {
    if (match(in[i], in[i + 1])) {
      o = emit(o, in[i], in[i + 1]);
      ++i;
    } else {
      *o++ = in[i];
    }
  }
  if (i < n) *o++ = in[i];
  out.resize(size_t(o - out.data()));
}

// The same pass for rules with a rare trigger character (13a's period, comma and dash): jumps from
// one trigger to the next (found by `next`, with memchr) and copies the text in between in bulk.
//   kTriggerSecond: the rule is "x t" (t the trigger); else it is "t y".
template <bool kTriggerSecond, typename Next, typename Other, typename Emit>
void sparse_pass(const std::string& in, std::string& out, Next next, Other other, Emit emit) {
  out.resize(2 * in.size());
  const char* s = in.data();
  const size_t n = in.size();
  char* o = &out[0];
  size_t p = 0;  // everything before p is copied or consumed
  for (size_t j = next(s, n, kTriggerSecond ? 1 : 0); j < n; j = next(s, n, j + 1)) {
    if (kTriggerSecond) {  // a match at (j-1, j) if s[j-1] is free and qualifies
      if (j >= p + 1 && other(static_cast<unsigned char>(s[j - 1]))) {
        std::memcpy(o, s + p, j - 1 - p);
        o = emit(o + (j - 1 - p), s[j - 1], s[j]);
        p = j + 1;
      }
    } else if (j >= p && j + 1 < n && other(static_cast<unsigned char>(s[j + 1]))) {
      std::memcpy(o, s + p, j - p);  // a match at (j, j+1)
      o = emit(o + (j - p), s[j], s[j + 1]);
      p = j + 2;
      ++j;
    }
  }
  std::memcpy(o, s + p, n - p);
  o += n - p;
  out.resize(size_t(o - out.data()));
}

// The first position >= from of byte c in s[0, n), or n.
size_t find_byte(const char* s, size_t n, size_t from, char c) {
  if (from >= n) return n;
  const void* hit = std::memchr(s + from, c, n - from);
  return hit ? size_t(static_cast<const char*>(hit) - s) : n;
}

// The first period or comma at or after `from`; remembers where the next of each is.
struct NextPeriodOrComma {
  size_t dot = 0, comma = 0;
  bool started = false;
  size_t operator()(const char* s, size_t n, size_t from) {
    if (!started || dot < from) dot = find_byte(s, n, from, '.');
    if (!started || comma < from) comma = find_byte(s, n, from, ',');
    started = true;
    return std::min(dot, comma);
  }
};

// UTF-8 <-> code points. Input comes from Python (valid UTF-8, surrogates allowed); a malformed
// byte would be kept as one code point of its own so that nothing is lost or read out of bounds.
void decode(std::string_view s, std::u32string& out) {
  out.resize(s.size());
  char32_t* o = &out[0];
  auto* p = reinterpret_cast<const unsigned char*>(s.data());
  auto* end = p + s.size();
  while (p < end) {
    const unsigned c = *p;
    if (c < 0x80) {
      *o++ = c;
      ++p;
      continue;
    }
    const int n = char_len(*p);
    bool ok = n > 1 && end - p >= n;
    for (int k = 1; ok && k < n; ++k) ok = (p[k] & 0xC0) == 0x80;
    if (!ok) {
      *o++ = c;
      ++p;
      continue;
    }
    char32_t cp = n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    for (int k = 1; k < n; ++k) cp = (cp << 6) | (p[k] & 0x3F);
    *o++ = cp;
    p += n;
  }
  out.resize(size_t(o - out.data()));
}

void encode(char32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

// Every non-whitespace character is a token.
void tokenize_char(std::string_view line, std::string& chars, std::vector<int64_t>& ends) {
  auto* p = reinterpret_cast<const unsigned char*>(line.data());
  auto* end = p + line.size();
  for (auto* q = p; q < end;) {
    const int w = space_len(q, end);
    if (w) {
      q += w;
      continue;
    }
    const int n = int(std::min<std::ptrdiff_t>(char_len(*q), end - q));
    chars.append(reinterpret_cast<const char*>(q), size_t(n));
    ends.push_back(int64_t(chars.size()));
    q += n;
  }
}

}  // namespace

void decode_utf8(std::string_view s, std::u32string& out) { decode(s, out); }
bool is_python_space(char32_t c) { return is_space_cp(c); }

Tokenizer parse_tokenizer(std::string_view name) {
  if (name == "none") return Tokenizer::kNone;
  if (name == "13a") return Tokenizer::k13a;
  if (name == "intl") return Tokenizer::kIntl;
  if (name == "char") return Tokenizer::kChar;
  throw std::invalid_argument("tokenize: expected one of '13a', 'char', 'intl', 'none', got '" +
                              std::string(name) + "'");
}

LineTokenizer::LineTokenizer(Tokenizer kind, const uint8_t* flags) : kind_(kind), flags_(flags) {
  if (kind == Tokenizer::kIntl && !flags)
    throw std::invalid_argument("tokenize: the intl tokenizer needs its Unicode table");
}

void LineTokenizer::operator()(std::string_view line, std::string& chars,
                               std::vector<int64_t>& ends) {
  line = rstrip(line);
  switch (kind_) {
    case Tokenizer::kNone:
      return split(line.data(), line.size(), chars, ends);
    case Tokenizer::k13a:
      return run_13a(line, chars, ends);
    case Tokenizer::kIntl:
      return run_intl(line, chars, ends);
    case Tokenizer::kChar:
      return tokenize_char(line, chars, ends);
  }
}

void LineTokenizer::run_13a(std::string_view line, std::string& chars, std::vector<int64_t>& ends) {
  std::string& a = a_;
  std::string& b = b_;
  a.assign(line.data(), line.size());
  if (a.find("<skipped>") != std::string::npos) {
    replace(a, "<skipped>", "", b);
    a.swap(b);
  }
  if (a.find('\n') != std::string::npos) {
    replace(a, "-\n", "", b);
    replace(b, "\n", " ", a);
  }
  if (a.find('&') != std::string::npos) {  // entities, in mteval's order
    replace(a, "&quot;", "\"", b);
    replace(b, "&amp;", "&", a);
    replace(a, "&lt;", "<", b);
    replace(b, "&gt;", ">", a);
  }
  // Pad the line with a space each side, and each separated character with a space each side.
  b.resize(3 * a.size() + 2);
  char* o = &b[0];
  *o++ = ' ';
  for (const char ch : a) {
    if (kSeparated.on[static_cast<unsigned char>(ch)]) {
      o[0] = ' ';
      o[1] = ch;
      o[2] = ' ';
      o += 3;
    } else {
      *o++ = ch;
    }
  }
  *o++ = ' ';
  b.resize(size_t(o - b.data()));
  auto non_digit = [](unsigned char c) { return !is_digit(c); };
  // A period or comma after a non-digit: "x." -> "x . ".
  sparse_pass<true>(b, a, NextPeriodOrComma{}, non_digit, [](char* w, char x, char y) {
    w[0] = x, w[1] = ' ', w[2] = y, w[3] = ' ';
    return w + 4;
  });
  // A period or comma before a non-digit: ".x" -> " . x".
  sparse_pass<false>(a, b, NextPeriodOrComma{}, non_digit, [](char* w, char x, char y) {
    w[0] = ' ', w[1] = x, w[2] = ' ', w[3] = y;
    return w + 4;
  });
  // A dash after a digit: "1-" -> "1 - ".
  auto next_dash = [](const char* s, size_t n, size_t from) { return find_byte(s, n, from, '-'); };
  sparse_pass<true>(b, a, next_dash, is_digit, [](char* w, char x, char y) {
    w[0] = x, w[1] = ' ', w[2] = y, w[3] = ' ';
    return w + 4;
  });
  split(a.data(), a.size(), chars, ends);
}

void LineTokenizer::run_intl(std::string_view line, std::string& chars,
                             std::vector<int64_t>& ends) {
  const uint8_t* flags = flags_;
  auto flag = [flags](char32_t cp) -> uint8_t { return cp < kUnicodeSize ? flags[cp] : 0; };
  decode(line, ua_);
  // Punctuation after a non-number: "x." -> "x . ".
  two_char_pass(
      ua_, ub_, [&](char32_t x, char32_t y) { return !(flag(x) & kNumber) && (flag(y) & kPunct); },
      [](char32_t* w, char32_t x, char32_t y) {
        w[0] = x, w[1] = U' ', w[2] = y, w[3] = U' ';
        return w + 4;
      });
  // Punctuation before a non-number: ".x" -> " . x".
  two_char_pass(
      ub_, ua_, [&](char32_t x, char32_t y) { return (flag(x) & kPunct) && !(flag(y) & kNumber); },
      [](char32_t* w, char32_t x, char32_t y) {
        w[0] = U' ', w[1] = x, w[2] = U' ', w[3] = y;
        return w + 4;
      });
  // Symbols stand alone; then split on whitespace and encode each token.
  bool in_token = false;
  for (const char32_t cp : ua_) {
    const bool symbol = flag(cp) & kSymbol;
    if (symbol || is_space_cp(cp)) {
      if (in_token) ends.push_back(int64_t(chars.size()));
      in_token = false;
      if (!symbol) continue;
      encode(cp, chars);
      ends.push_back(int64_t(chars.size()));
      continue;
    }
    encode(cp, chars);
    in_token = true;
  }
  if (in_token) ends.push_back(int64_t(chars.size()));
}

}  // namespace fastrnn::bleu
