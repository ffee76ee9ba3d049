// compile_me: the input of the "compile" workload, not a benchmark itself.
//
// run_suite.py times `g++ -std=c++20 -O1 -c compile_me.cc` under each
// malloc: cc1plus is a large real program that allocates a great many small
// objects with malloc (besides its own garbage-collected heap). This file is
// moderately heavy on purpose: it includes <map>, <vector>, <string>,
// <algorithm> and <regex> (parsing those is about half the work) and
// instantiates containers and algorithms for a few types, so template
// instantiation and the optimizer have work too. It uses <regex> only
// lightly: compiling one regex_search alone takes several seconds at -O1.
// Its object file is the workload's checksum: GCC's output must not depend
// on the allocator.
#include <algorithm>
#include <map>
#include <regex>
#include <string>
#include <vector>

namespace compile_me {

template <class Key, class Value>
std::vector<std::pair<Key, Value>> SortedByValue(const std::map<Key, Value>& m) {
  std::vector<std::pair<Key, Value>> v(m.begin(), m.end());
  std::stable_sort(v.begin(), v.end(),
                   [](const auto& a, const auto& b) { return a.second < b.second; });
  return v;
}

template <class T>
T Median(std::vector<T> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

template <class T>
std::map<T, int> Histogram(const std::vector<T>& v) {
  std::map<T, int> h;
  for (const T& x : v) ++h[x];
  return h;
}

template <class T>
std::vector<T> SortedUnique(std::vector<T> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

struct Record {
  std::string name;
  std::vector<double> values;
  bool operator<(const Record& o) const { return name < o.name; }
  bool operator==(const Record& o) const { return name == o.name; }
};

}  // namespace compile_me

// Explicit instantiations: the compiler must generate all of these.
template std::vector<std::pair<std::string, int>> compile_me::SortedByValue(
    const std::map<std::string, int>&);
template std::vector<std::pair<int, double>> compile_me::SortedByValue(
    const std::map<int, double>&);
template double compile_me::Median(std::vector<double>);
template std::map<std::string, int> compile_me::Histogram(const std::vector<std::string>&);
template std::map<long, int> compile_me::Histogram(const std::vector<long>&);
template std::vector<std::string> compile_me::SortedUnique(std::vector<std::string>);
template std::vector<compile_me::Record> compile_me::SortedUnique(std::vector<compile_me::Record>);

std::regex_constants::syntax_option_type compile_me_flags() {
  return std::regex_constants::ECMAScript | std::regex_constants::icase;
}
