// memory_bound: a chained hash table of many small nodes, traversed.
//
// The allocator's cost here is not in malloc and free but in where it puts
// the blocks: the program builds a hash table of 600,000 small nodes (33-80
// bytes: key, value and a payload), deletes half of them at random and
// inserts as many new ones (as a long-lived cache or symbol table sees),
// then walks the whole table bucket by bucket and does random lookups,
// several times. Each step is a dependent load, and the table (about
// 40 MiB) is far larger than the L2 cache, so the time follows how densely
// the allocator packs nodes (header and size-class slack) and how close in
// memory it places nodes allocated close in time (a chain is built in
// insertion order). The build phase itself measures allocation of small
// blocks of a few sizes in bulk.
#include <cstdlib>
#include <cstring>
#include <vector>

#include "mbench.h"

namespace {

constexpr double kNodes = 600'000;      // at scale 1
constexpr size_t kNodesPerBucket = 4;   // on average
constexpr size_t kWalks = 8;            // full traversals
constexpr double kLookups = 2'000'000;  // at scale 1

struct Node {
  Node* next;
  uint64_t key;
  uint64_t value;
  uint32_t payload_len;
  // payload_len bytes follow
  unsigned char* payload() { return reinterpret_cast<unsigned char*>(this + 1); }
  const unsigned char* payload() const { return reinterpret_cast<const unsigned char*>(this + 1); }
};

class Table {
 public:
  explicit Table(size_t nodes) {
    size_t n = 1;
    while (n * kNodesPerBucket < nodes) n *= 2;
    buckets_.assign(n, nullptr);
  }
  ~Table() {
    for (Node*& head : buckets_) {
      while (head) {
        Node* n = head;
        head = n->next;
        std::free(n);
      }
    }
  }

  // Inserts at the tail of the chain, so a chain is in insertion order.
  void Insert(uint64_t key, uint32_t payload_len) {
    auto* n = static_cast<Node*>(std::malloc(sizeof(Node) + payload_len));
    if (!n) std::abort();
    n->next = nullptr;
    n->key = key;
    n->value = mbench::Spread(key);
    n->payload_len = payload_len;
    std::memset(n->payload(), static_cast<int>(key), payload_len);
    Node** link = &buckets_[Bucket(key)];
    while (*link) link = &(*link)->next;
    *link = n;
  }
  bool Erase(uint64_t key) {
    for (Node** link = &buckets_[Bucket(key)]; *link; link = &(*link)->next) {
      if ((*link)->key == key) {
        Node* n = *link;
        *link = n->next;
        std::free(n);
        return true;
      }
    }
    return false;
  }
  const Node* Find(uint64_t key) const {
    for (const Node* n = buckets_[Bucket(key)]; n; n = n->next) {
      if (n->key == key) return n;
    }
    return nullptr;
  }
  // Visits every node: a full dependent-load traversal.
  uint64_t Walk() {
    uint64_t s = 0;
    for (Node* head : buckets_) {
      for (Node* n = head; n; n = n->next) s += n->value ^ n->payload()[n->payload_len - 1];
    }
    return s;
  }

 private:
  size_t Bucket(uint64_t key) const { return mbench::Spread(key) & (buckets_.size() - 1); }
  std::vector<Node*> buckets_;
};

}  // namespace

int main(int argc, char** argv) {
  mbench::Args args = mbench::ParseArgs(argc, argv, 7);
  mbench::Rng rng(args.seed);
  auto payload = [&] { return static_cast<uint32_t>(rng.Range(1, 48)); };

  const size_t nodes = mbench::Scaled(kNodes, args.scale);
  Table table(nodes);
  std::vector<uint64_t> keys(nodes);
  uint64_t next_key = 1;
  for (uint64_t& k : keys) {
    k = next_key++ * 0x9e3779b97f4a7c15ULL;
    table.Insert(k, payload());
  }
  // Replace half of the nodes: the free lists get scrambled, new nodes
  // land wherever the allocator finds room.
  for (size_t i = 0; i < nodes / 2; ++i) {
    uint64_t& k = keys[rng.Below(nodes)];
    if (!table.Erase(k)) std::abort();
    k = next_key++ * 0x9e3779b97f4a7c15ULL;
    table.Insert(k, payload());
  }

  uint64_t sum = 0;
  size_t lookups = mbench::Scaled(kLookups, args.scale) / kWalks;
  for (size_t w = 0; w < kWalks; ++w) {
    sum = mbench::Mix(sum, table.Walk());
    for (size_t i = 0; i < lookups; ++i) {
      const Node* n = table.Find(keys[rng.Below(nodes)]);
      if (!n) std::abort();
      sum += n->value + n->payload()[0];
    }
  }
  mbench::PrintChecksum(sum);
  return 0;
}
