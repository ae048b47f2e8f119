// bleu.h: BLEU's sufficient statistics in plain C++17 (no Python): sacrebleu-compatible
// tokenizers, n-gram extraction and clipped counting, and the score of one statistics row.
// It is not a metric library: corpus sums, signatures and argument checks live in Python
// (fastrnn/bleu/).
//
// Conventions:
//   Text is UTF-8 as Python would encode it (lone surrogates pass through as 3-byte sequences).
//   "Whitespace" is exactly Python's str.isspace(), so splitting agrees with str.split().
//   A sentence's tokens become int64 ids (text is interned per call; token-id input is used
//   as is), and every n-gram routine works on id spans.
//   One statistics row per segment, W = 2 + 2 * order int64 values:
//     [sys_len, ref_len, correct_1 .. correct_order, total_1 .. total_order]
//   exactly sacrebleu's segment statistics (ref_len: the reference length closest to sys_len,
//   the shorter one on ties).
//   Errors: std::invalid_argument (pybind11 raises ValueError); nothing exits or aborts.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fastrnn::bleu {

enum class Tokenizer : int { kNone = 0, k13a, kIntl, kChar };
Tokenizer parse_tokenizer(std::string_view name);

// Flags per Unicode code point (a table of kUnicodeSize bytes) for the intl tokenizer:
// general categories P*, S* and N*.
enum : uint8_t { kPunct = 1, kSymbol = 2, kNumber = 4 };
constexpr int64_t kUnicodeSize = 0x110000;

// Tokenizes lines as sacrebleu does to `line.rstrip()`: appends each token's bytes to `chars` and
// its end offset (into `chars`) to `ends`. `flags` is needed by kIntl only. One object per thread:
// it keeps its scratch buffers between lines.
class LineTokenizer {
 public:
  LineTokenizer(Tokenizer kind, const uint8_t* flags);
  void operator()(std::string_view line, std::string& chars, std::vector<int64_t>& ends);

 private:
  void run_13a(std::string_view line, std::string& chars, std::vector<int64_t>& ends);
  void run_intl(std::string_view line, std::string& chars, std::vector<int64_t>& ends);
  Tokenizer kind_;
  const uint8_t* flags_;
  std::string a_, b_;
  std::u32string ua_, ub_;
};

// A token-id sequence.
struct Span {
  const int64_t* ids;  // [len]
  int64_t len;
};

// Interns tokens (byte strings) as dense ids 0, 1, 2, ... reset() forgets every token. The table
// starts at a size for the tokens to come (at most kInitialSlots) and grows with the distinct
// tokens actually seen, so memory follows the vocabulary, not the text, and a per-segment
// vocabulary stays small enough for L1.
class Vocab {
 public:
  void reset(int64_t max_tokens);
  int64_t id(std::string_view token);

 private:
  struct Slot {
    uint64_t hash;
    int64_t offset;
    int32_t len;     // tokens longer than 2 GiB are refused
    uint32_t stamp;  // the slot is empty unless stamp == stamp_
    int64_t id;
  };
  void grow();
  std::vector<Slot> slots_;
  uint64_t mask_ = 0;
  uint32_t stamp_ = 0;
  std::string chars_;
  int64_t size_ = 0;
};

// Clipped n-gram matching of hypotheses against a set of references: set_references() builds a
// table of each n-gram's largest count in any one reference; match() then writes the statistics
// row of a hypothesis. Reusable across segments without clearing (entries are stamped). The table
// holds one 32-byte entry per distinct reference n-gram at a load of at most 3/4 (it starts at a
// size for the segment, at most kInitialSlots, and doubles as distinct n-grams arrive).
class NgramCounter {
 public:
  explicit NgramCounter(int order);
  // refs: [nrefs]. The spans must stay alive until the next set_references().
  void set_references(const Span* refs, int64_t nrefs);
  void match(Span hyp, int64_t* stats /* [W] */);

 private:
  struct Entry {
    uint64_t key;        // low 48 bits: the n-gram's hash; high 16 bits: n
    const int64_t* ids;  // [n], in a reference
    uint32_t live;       // the entry is empty unless live == live_
    uint32_t mark;       // the pass (one reference, or one hypothesis) that `cur` counts for
    int32_t ref_max;     // largest count in any one reference
    int32_t cur;         // count in the current pass
  };
  Entry* find(uint64_t key, const int64_t* ids, int n);
  Entry* insert(uint64_t key, const int64_t* ids, int n);
  void grow();
  void next_mark();

  int order_;
  std::vector<Entry> table_;
  uint64_t mask_ = 0;
  int64_t size_ = 0;  // live entries
  uint32_t live_ = 0, mark_ = 0;
  std::vector<int64_t> ref_lens_;
};

enum class Smooth : int { kNone = 0, kFloor, kAddK, kExp };
Smooth parse_smooth(std::string_view name);

// sacrebleu's BLEU.compute_bleu of one statistics row, reproduced operation for operation so the
// double result is bit-identical. `compensated_sum`: Python >= 3.12 sums floats with Neumaier's
// compensation in the builtin sum(); pass whether the calling interpreter does.
double score(const int64_t* stats /* [W] */, int order, Smooth smooth, double smooth_value,
             bool effective_order, bool compensated_sum);

// Statistics of N segments. hyps [N]; refs [R * N] (stream-major: refs[r * N + i]), with
// present[r * N + i] == 0 marking "no reference r for segment i". Every segment needs at least
// one reference. stats: [N, W].
void text_stats(const std::string_view* hyps, int64_t n, const std::string_view* refs,
                const uint8_t* present, int64_t nrefs, Tokenizer kind, const uint8_t* flags,
                int order, int64_t* stats);

// The same for token ids: hyp i is hyp_ids[hyp_off[i] .. hyp_off[i + 1]), reference r of segment
// i is ref_ids[ref_off[r * N + i] .. ref_off[r * N + i + 1]) (ref_off has R * N + 1 entries).
void id_stats(const int64_t* hyp_ids, const int64_t* hyp_off, int64_t n, const int64_t* ref_ids,
              const int64_t* ref_off, const uint8_t* present, int64_t nrefs, int order,
              int64_t* stats);

// Sentence BLEU of every hypothesis against every single reference: scores [N, M].
void pairwise_text(const std::string_view* hyps, int64_t n, const std::string_view* refs, int64_t m,
                   Tokenizer kind, const uint8_t* flags, int order, Smooth smooth,
                   double smooth_value, bool effective_order, bool compensated_sum, double* scores);
void pairwise_ids(const int64_t* hyp_ids, const int64_t* hyp_off, int64_t n, const int64_t* ref_ids,
                  const int64_t* ref_off, int64_t m, int order, Smooth smooth, double smooth_value,
                  bool effective_order, bool compensated_sum, double* scores);

// --- shared with chrf.cpp and resample.cpp ---------------------------------------------------

// UTF-8 (as Python encodes it, surrogates allowed) to code points, and Python's str.isspace().
void decode_utf8(std::string_view s, std::u32string& out);
bool is_python_space(char32_t c);

// bp * exp(sum(logs) / used), the end of sacrebleu's compute_bleu: `logs` in order, summed as
// Python's builtin sum() does (Neumaier-compensated where `compensated_sum`).
double finish_bleu(double bp, const double* logs, int used, bool compensated_sum);

}  // namespace fastrnn::bleu
