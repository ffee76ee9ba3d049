// producer_consumer: blocks allocated on one thread and freed on another.
//
// Producers (default 2) allocate blocks, fill them and pass them in batches
// through a bounded mutex/condition-variable queue to consumers (default 2),
// which read and free them: every free is a cross-thread ("remote") free,
// as in a pipeline, a message-passing server or a logger thread. Thread-
// caching allocators must send such blocks back to their owner (tcmalloc's
// central lists, jemalloc's arena bins, mimalloc's delayed free lists), and
// a block's memory keeps moving between threads and cores. The batch
// descriptors themselves (new on the producer, delete on the consumer) are
// remote frees too. The checksum is an order-independent sum, so it does
// not depend on which consumer got which batch.
//
//   mbench_producer_consumer [SCALE [SEED [PRODUCERS [CONSUMERS]]]]
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "mbench.h"

namespace {

constexpr double kBlocksPerProducer = 2'000'000;  // at scale 1
constexpr size_t kBatch = 128;
constexpr size_t kQueueBatches = 64;  // producers wait when this many are queued

struct Item {
  void* p;
  size_t size;
  uint64_t tag;
};

struct Batch {
  size_t n = 0;
  Item items[kBatch];
};

class Queue {
 public:
  void Push(Batch* b) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return q_.size() < kQueueBatches; });
    q_.push_back(b);
    not_empty_.notify_one();
  }
  // nullptr once every producer is done and the queue is empty.
  Batch* Pop() {
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [&] { return !q_.empty() || producers_left_ == 0; });
    if (q_.empty()) return nullptr;
    Batch* b = q_.front();
    q_.pop_front();
    not_full_.notify_one();
    return b;
  }
  void SetProducers(int n) { producers_left_ = n; }
  void ProducerDone() {
    std::lock_guard lock(mu_);
    if (--producers_left_ == 0) not_empty_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::deque<Batch*> q_;
  int producers_left_ = 0;
};

size_t PickSize(mbench::Rng& rng) {
  unsigned r = static_cast<unsigned>(rng.Below(100));
  if (r < 75) return rng.Range(16, 256);
  if (r < 98) return rng.Range(257, 2048);
  return rng.LogRange(2049, 32 * 1024);
}

void Producer(Queue& q, uint64_t seed, uint64_t id, size_t blocks) {
  mbench::Rng rng(seed);
  Batch* b = new Batch;
  for (size_t i = 0; i < blocks; ++i) {
    Item& it = b->items[b->n++];
    it.size = PickSize(rng);
    it.tag = mbench::Spread((id << 40) | i);
    it.p = std::malloc(it.size);
    if (!it.p) std::abort();
    mbench::Stamp(it.p, it.size, it.tag, 32);
    if (b->n == kBatch) {
      q.Push(b);
      b = new Batch;
    }
  }
  if (b->n) {
    q.Push(b);
  } else {
    delete b;
  }
  q.ProducerDone();
}

uint64_t Consumer(Queue& q) {
  uint64_t sum = 0;
  while (Batch* b = q.Pop()) {
    for (size_t i = 0; i < b->n; ++i) {
      const Item& it = b->items[i];
      sum += mbench::Spread(mbench::Check(it.p, it.size, it.tag, 32) ^ it.tag);
      std::free(it.p);
    }
    delete b;
  }
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  mbench::Count counts[] = {{"PRODUCERS", 2}, {"CONSUMERS", 2}};
  mbench::Args args = mbench::ParseArgs(argc, argv, 3, counts);
  int producers = counts[0].value, consumers = counts[1].value;
  size_t blocks = mbench::Scaled(kBlocksPerProducer, args.scale);

  Queue q;
  q.SetProducers(producers);
  std::vector<uint64_t> sums(consumers);
  std::vector<std::thread> threads;
  for (int c = 0; c < consumers; ++c) threads.emplace_back([&, c] { sums[c] = Consumer(q); });
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] { Producer(q, args.seed * 1000 + p, p, blocks); });
  }
  for (auto& th : threads) th.join();

  uint64_t total = 0;
  for (uint64_t s : sums) total += s;
  mbench::PrintChecksum(mbench::Mix(mbench::Mix(total, blocks), producers));
  return 0;
}
