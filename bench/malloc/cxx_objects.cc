// cxx_objects: the allocation pattern of ordinary C++ code.
//
// Each round indexes a synthetic text, the way a compiler front end, an
// indexer or a log analyser does: a std::vector<std::string> of tokens
// (short strings in the SSO buffer, longer ones on the heap), a
// std::map<std::string, Entry> from word to its positions (a growing
// std::vector<uint32_t>) and a std::shared_ptr to shared metadata, an
// std::unordered_map of those shared pointers, sentences as vectors of
// string copies, a sorted copy of all tokens, then the rare words erased.
// Everything goes through operator new/delete with sizes the standard
// containers choose (tree nodes, hash nodes and buckets, vector growth,
// string capacity), many objects die young, and shared_ptr control blocks
// and their atomic reference counts come along: what C++ programs mostly
// ask of malloc.
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "mbench.h"

namespace {

constexpr size_t kVocabulary = 20'000;
constexpr size_t kTokensPerRound = 200'000;
constexpr double kRounds = 4;  // at scale 1 (quick runs use fewer tokens)

struct Meta {
  std::string name;
  uint64_t first_seen;
  std::vector<std::string> tags;
};

struct Entry {
  std::vector<uint32_t> positions;
  std::shared_ptr<Meta> meta;
};

uint64_t Fnv(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

std::vector<std::string> MakeVocabulary(mbench::Rng& rng) {
  std::vector<std::string> words;
  words.reserve(kVocabulary);
  for (size_t i = 0; i < kVocabulary; ++i) {
    // Mostly short words, a tail of long identifiers beyond the SSO buffer.
    size_t len = rng.Percent(70) ? rng.Range(2, 12) : rng.Range(16, 48);
    std::string w;
    for (size_t j = 0; j < len; ++j) w += static_cast<char>('a' + rng.Below(26));
    words.push_back(std::move(w));
  }
  return words;
}

uint64_t Round(const std::vector<std::string>& vocab, mbench::Rng& rng, size_t ntokens) {
  std::vector<std::string> tokens;
  for (size_t i = 0; i < ntokens; ++i) {
    double u = static_cast<double>(rng.Below(1u << 30)) / (1u << 30);
    tokens.push_back(vocab[static_cast<size_t>(u * u * u * vocab.size())]);  // skewed
  }

  std::map<std::string, Entry> index;
  std::unordered_map<std::string, std::shared_ptr<Meta>> by_name;
  for (size_t i = 0; i < tokens.size(); ++i) {
    Entry& e = index[tokens[i]];
    e.positions.push_back(static_cast<uint32_t>(i));
    if (!e.meta) {
      e.meta = std::make_shared<Meta>(Meta{tokens[i] + "#meta", i, {}});
      for (size_t t = rng.Below(4); t > 0; --t) e.meta->tags.push_back("tag" + std::to_string(t));
      by_name.emplace(e.meta->name, e.meta);
    }
  }

  std::vector<std::vector<std::string>> sentences;
  for (size_t i = 0; i < tokens.size();) {
    size_t n = std::min<size_t>(rng.Range(5, 20), tokens.size() - i);
    sentences.emplace_back(tokens.begin() + i, tokens.begin() + i + n);
    i += n;
  }

  std::vector<std::string> sorted = tokens;
  std::sort(sorted.begin(), sorted.end());

  // Drop the rare words (and with them the last owner of their metadata).
  for (auto it = index.begin(); it != index.end();) {
    if (it->second.positions.size() < 3) {
      by_name.erase(it->second.meta->name);
      it = index.erase(it);
    } else {
      ++it;
    }
  }

  uint64_t h = mbench::Mix(index.size(), by_name.size());
  for (const auto& [word, e] : index) {
    h = mbench::Mix(h, Fnv(word) + e.positions.size() + e.meta.use_count() + e.meta->tags.size());
  }
  h = mbench::Mix(h, sentences.size());
  for (size_t i = 0; i < sorted.size(); i += 997) h = mbench::Mix(h, Fnv(sorted[i]));
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  mbench::Args args = mbench::ParseArgs(argc, argv, 8);
  mbench::Rng rng(args.seed);
  std::vector<std::string> vocab = MakeVocabulary(rng);
  // Scale the rounds, and below one round the text itself.
  size_t rounds = mbench::Scaled(kRounds, args.scale);
  size_t ntokens = mbench::Scaled(kTokensPerRound, std::min(1.0, args.scale * kRounds));
  uint64_t h = 0;
  for (size_t r = 0; r < rounds; ++r) h = mbench::Mix(h, Round(vocab, rng, ntokens));
  mbench::PrintChecksum(h);
  return 0;
}
