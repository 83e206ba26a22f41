// Dataset sources and transformations: one Node (description) and one Stream
// (running pass) per stage. See Note [Stream contract] in data/stream.h.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <limits>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include <ember/creation.h>
#include <ember/ops.h>
#include <ember/random.h>

#include "data/stream.h"

namespace ember::data {

// ---- Element ------------------------------------------------------------------

Element::Element(Tensor t) { push_back(std::move(t)); }

Element::Element(std::initializer_list<Tensor> ts) {
  for (const Tensor& t : ts) push_back(t);
}

Element::Element(std::vector<Tensor> ts) {
  if (ts.size() > kInline) {
    heap_ = std::move(ts);
    size_ = heap_.size();
  } else {
    for (Tensor& t : ts) push_back(std::move(t));
  }
}

Element::Element(const Element& o) {
  if (o.size_ > kInline) {
    heap_ = o.heap_;
    size_ = o.size_;
  } else {
    for (const Tensor& t : o) push_back(t);
  }
}

Element::Element(Element&& o) noexcept { *this = std::move(o); }

Element& Element::operator=(const Element& o) {
  if (this != &o) *this = Element(o);
  return *this;
}

Element& Element::operator=(Element&& o) noexcept {
  if (this == &o) return *this;
  clear();
  if (o.size_ > kInline) {
    heap_ = std::move(o.heap_);
    o.heap_.clear();
  } else {
    for (std::size_t i = 0; i < o.size_; ++i) inline_[i] = std::move(o.inline_[i]);
  }
  size_ = o.size_;
  o.size_ = 0;
  return *this;
}

const Tensor& Element::at(std::size_t i) const {
  if (i >= size_)
    throw IndexError(fmt::format("Element: index {} is out of range for {} tensors", i, size_));
  return data()[i];
}

const Tensor& Element::tensor() const {
  if (size_ != 1)
    throw ValueError(fmt::format(
        "Element: holds {} tensors where one Tensor was expected; index it (e[0], e[1], ...)",
        size_));
  return inline_[0];
}

void Element::push_back(Tensor t) {
  if (size_ < kInline) {
    inline_[size_++] = std::move(t);
    return;
  }
  if (size_ == kInline) {
    heap_.reserve(2 * kInline);
    for (Tensor& x : inline_) heap_.push_back(std::move(x));
    for (Tensor& x : inline_) x = Tensor();
  }
  heap_.push_back(std::move(t));
  ++size_;
}

void Element::clear() {
  for (std::size_t i = 0; i < std::min(size_, kInline); ++i) inline_[i] = Tensor();
  heap_.clear();
  size_ = 0;
}

namespace detail {

// ---- shared helpers ----------------------------------------------------------

void throw_arity(const char* op, std::size_t takes, std::size_t got) {
  throw ValueError(fmt::format("{}: the function takes {} tensors but the element has {}", op,
                               takes, got));
}

bool truth(const char* op, const Tensor& t) {
  if (t.numel() != 1)
    throw ValueError(fmt::format("{}: the predicate returned a {} tensor; need a single value", op,
                                 shape_str(t.shape())));
  return t.item<bool>();
}

int64_t Stream::next_block(int64_t, Element&) {
  EMBER_CHECK_INTERNAL(!"next_block called on a stream without blocks");
  return 0;
}

namespace {

Tensor int64_scalar(int64_t v) {
  Tensor t = ::ember::detail::make_tensor(Shape{}, int64, Device::cpu());
  *t.data<int64_t>() = v;
  return t;
}

// A stage with one input stream.
class UnaryStream : public Stream {
 public:
  explicit UnaryStream(std::unique_ptr<Stream> in) : in_(std::move(in)) {}
  void cancel() override { in_->cancel(); }

 protected:
  std::unique_ptr<Stream> in_;
};

class UnaryNode : public Node {
 public:
  explicit UnaryNode(std::shared_ptr<const Node> input) : input_(std::move(input)) {}

 protected:
  std::shared_ptr<const Node> input_;
};

// ---- sources -------------------------------------------------------------------

class EmptyStream : public Stream {
 public:
  bool next(Element&) override { return false; }
};

class EmptyNode : public Node {
 public:
  std::unique_ptr<Stream> make_stream() const override { return std::make_unique<EmptyStream>(); }
  int64_t cardinality() const override { return 0; }
};

class RangeStream : public Stream {
 public:
  RangeStream(int64_t start, int64_t step, int64_t count)
      : start_(start), step_(step), count_(count) {}
  bool next(Element& out) override {
    if (pos_ >= count_) return false;
    out = Element(int64_scalar(start_ + pos_ * step_));
    ++pos_;
    return true;
  }
  bool has_blocks() const override { return true; }
  int64_t next_block(int64_t max, Element& out) override {
    const int64_t k = std::min(max, count_ - pos_);
    if (k <= 0) return 0;
    Tensor t = ::ember::detail::make_tensor(Shape{k}, int64, Device::cpu());
    int64_t* p = t.data<int64_t>();
    const int64_t first = start_ + pos_ * step_;
    for (int64_t i = 0; i < k; ++i) p[i] = first + i * step_;
    out = Element(std::move(t));
    pos_ += k;
    return k;
  }

 private:
  int64_t start_, step_, count_;
  int64_t pos_ = 0;
};

class RangeNode : public Node {
 public:
  RangeNode(int64_t start, int64_t step, int64_t count)
      : start_(start), step_(step), count_(count) {}
  std::unique_ptr<Stream> make_stream() const override {
    return std::make_unique<RangeStream>(start_, step_, count_);
  }
  int64_t cardinality() const override { return count_; }

 private:
  int64_t start_, step_, count_;
};

class SlicesStream : public Stream {
 public:
  explicit SlicesStream(std::vector<Tensor> parts) : cursor_(std::move(parts)) {}
  bool next(Element& out) override { return cursor_.next(out); }
  bool has_blocks() const override { return true; }
  int64_t next_block(int64_t max, Element& out) override { return cursor_.next_block(max, out); }

 private:
  SliceCursor cursor_;
};

class SlicesNode : public Node {
 public:
  explicit SlicesNode(std::vector<Tensor> parts) : parts_(std::move(parts)) {}
  std::unique_ptr<Stream> make_stream() const override {
    return std::make_unique<SlicesStream>(parts_);
  }
  int64_t cardinality() const override { return parts_[0].shape(0); }

 private:
  std::vector<Tensor> parts_;
};

class GeneratorStream : public Stream {
 public:
  explicit GeneratorStream(GenFn gen) : gen_(std::move(gen)) {}
  bool next(Element& out) override { return gen_(out); }

 private:
  GenFn gen_;
};

class GeneratorNode : public Node {
 public:
  explicit GeneratorNode(GenFn gen) : proto_(std::move(gen)) {}
  // Each pass copies the prototype, so a stateful generator restarts.
  std::unique_ptr<Stream> make_stream() const override {
    return std::make_unique<GeneratorStream>(proto_);
  }

 private:
  GenFn proto_;
};

class ZipStream : public Stream {
 public:
  explicit ZipStream(std::vector<std::unique_ptr<Stream>> ins) : ins_(std::move(ins)) {}
  bool next(Element& out) override {
    if (done_) return false;
    out.clear();
    for (auto& in : ins_) {
      if (!in->next(part_)) {
        done_ = true;
        return false;
      }
      for (Tensor& t : part_) out.push_back(std::move(t));
    }
    return true;
  }
  void cancel() override {
    for (auto& in : ins_) in->cancel();
  }

 private:
  std::vector<std::unique_ptr<Stream>> ins_;
  Element part_;
  bool done_ = false;
};

class ZipNode : public Node {
 public:
  explicit ZipNode(std::vector<std::shared_ptr<const Node>> inputs) : inputs_(std::move(inputs)) {}
  std::unique_ptr<Stream> make_stream() const override {
    std::vector<std::unique_ptr<Stream>> ins;
    for (const auto& n : inputs_) ins.push_back(n->make_stream());
    return std::make_unique<ZipStream>(std::move(ins));
  }
  int64_t cardinality() const override {
    int64_t best = Dataset::kInfinite;
    for (const auto& n : inputs_) {
      const int64_t c = n->cardinality();
      if (c == Dataset::kUnknown) return Dataset::kUnknown;
      if (c >= 0) best = best < 0 ? c : std::min(best, c);
    }
    return best;
  }

 private:
  std::vector<std::shared_ptr<const Node>> inputs_;
};

// ---- element-wise stages ---------------------------------------------------------

class MapStream : public UnaryStream {
 public:
  MapStream(std::unique_ptr<Stream> in, MapFn fn)
      : UnaryStream(std::move(in)), fn_(std::move(fn)) {}
  bool next(Element& out) override {
    if (!in_->next(tmp_)) return false;
    out = fn_(tmp_);
    return true;
  }

 private:
  MapFn fn_;
  Element tmp_;
};

// Note [Parallel map]: workers take a ticket (bounded by `cap_` elements ahead
// of the consumer), pull one input element under `in_mu_` (which also fixes its
// sequence number), apply fn without any lock, and publish the result in the
// ring slot seq % cap_. The consumer takes slots strictly in sequence order, so
// the output order is the input order. A ticket is only granted while
// tickets < consumed + cap, and seq < tickets, so a slot is never reused before
// the consumer has emptied it. Errors (from the input or from fn) are stored in
// the slot of the element where they happened and rethrown by the consumer.
//
// Note [Parallel map wake-ups]: waking a sleeping thread costs a futex call and
// two context switches, several microseconds of CPU on a virtual machine, which
// the workers then lack. So the consumer, once asleep, is woken only when half
// the ring is ready in a row, or when the worker that publishes the awaited
// element will not go on (the ring is full or the input ended) and no other
// worker is inside fn; it then drains the run without sleeping. The ring (32
// elements, or 8 per worker) leaves the workers room to go on meanwhile. A
// worker blocked on its input is not inside fn, and the consumer's wait is timed
// (1 ms), so a slow source or a slow fn delays a ready element by at most that.
// A stream that pulls from its input on background threads (parallel map,
// prefetch): the shared stop flag, wake-up channels and thread lifetime.
// Derived classes start their threads last in their constructor and call
// stop_and_join() in their destructor, before their own members go away.
class ThreadedStream : public Stream {
 public:
  void cancel() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    ready_cv_.notify_all();
    space_cv_.notify_all();
    in_->cancel();
  }

 protected:
  explicit ThreadedStream(std::unique_ptr<Stream> in) : in_(std::move(in)) {}
  ~ThreadedStream() override = default;

  template <class F>
  void start(int n, F body) {
    try {
      for (int i = 0; i < n; ++i) threads_.emplace_back(body);
    } catch (...) {
      stop_and_join();
      throw;
    }
  }
  void stop_and_join() {
    cancel();
    for (std::thread& t : threads_)
      if (t.joinable()) t.join();
  }

  std::unique_ptr<Stream> in_;
  std::mutex mu_;  // guards stop_ and the derived class's shared state
  std::condition_variable ready_cv_;  // an element became ready for the consumer
  std::condition_variable space_cv_;  // room for producers
  bool stop_ = false;

 private:
  std::vector<std::thread> threads_;
};

class ParallelMapStream : public ThreadedStream {
 public:
  ParallelMapStream(std::unique_ptr<Stream> in, MapFn fn, int workers)
      : ThreadedStream(std::move(in)),
        fn_(std::move(fn)),
        cap_(std::max(32, 8 * workers)),
        wake_run_(cap_ / 2),
        slots_(cap_) {
    start(workers, [this] { work(); });
  }
  ~ParallelMapStream() override { stop_and_join(); }

  bool next(Element& out) override {
    std::exception_ptr err;
    {
      std::unique_lock<std::mutex> lock(mu_);
      Slot& s = slots_[static_cast<std::size_t>(consumed_ % cap_)];
      // Timed: a ready element is never held back for long by a worker whose fn is
      // slow (Note [Parallel map wake-ups]). A worker that wakes us clears the flag,
      // so that the others do not wake us again while we are being scheduled.
      while (!(s.ready || consumed_ >= end_seq_ || stop_)) {
        consumer_waiting_ = true;
        ready_cv_.wait_for(lock, std::chrono::milliseconds(1));
      }
      consumer_waiting_ = false;
      if (!s.ready) return false;
      out = std::move(s.value);
      err = std::move(s.error);
      s.value.clear();
      s.error = nullptr;
      s.ready = false;
      ++consumed_;
      // One wake-up at a time: the woken workers clear space_wake_pending_.
      const bool wake = space_waiters_ > 0 && !space_wake_pending_;
      if (wake) space_wake_pending_ = true;
      lock.unlock();
      if (wake) space_cv_.notify_all();
    }
    if (err) std::rethrow_exception(err);
    return true;
  }

 private:
  struct Slot {
    Element value;
    std::exception_ptr error;
    bool ready = false;
  };

  void work() {
    Element e;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (!(stop_ || exhausted_ || tickets_ < consumed_ + cap_)) {
          // Whoever wakes clears the pending flag, also when another worker took the
          // slot first and it sleeps again: the next consumption then wakes it anew.
          // The wait is timed all the same, as a guarantee of progress.
          do {
            ++space_waiters_;
            space_cv_.wait_for(lock, std::chrono::milliseconds(10));
            --space_waiters_;
            space_wake_pending_ = false;
          } while (!(stop_ || exhausted_ || tickets_ < consumed_ + cap_));
        }
        if (stop_ || exhausted_) return;
        ++tickets_;
      }
      int64_t seq = 0;
      bool got = false;
      bool input_failed = false;
      std::exception_ptr err;
      {
        std::lock_guard<std::mutex> lock(in_mu_);
        if (!in_done_) {
          seq = pulled_;
          try {
            got = in_->next(e);
          } catch (...) {
            err = std::current_exception();
            got = true;
            input_failed = true;
          }
          if (got) ++pulled_;
          if (!got || input_failed) in_done_ = true;
          if (got && !input_failed) computing_.fetch_add(1, std::memory_order_relaxed);
        }
        if (!got) {
          finish(pulled_);
          return;
        }
      }
      if (!err) {
        try {
          e = fn_(e);
        } catch (...) {
          err = std::current_exception();
        }
      }
      bool wake = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        Slot& s = slots_[static_cast<std::size_t>(seq % cap_)];
        s.value = std::move(e);
        s.error = std::move(err);
        s.ready = true;
        if (input_failed) {
          exhausted_ = true;
          end_seq_ = seq + 1;
        } else {
          computing_.fetch_sub(1, std::memory_order_relaxed);
        }
        const bool goes_on = !stop_ && !exhausted_ && tickets_ < consumed_ + cap_;
        wake = consumer_waiting_ && slots_[static_cast<std::size_t>(consumed_ % cap_)].ready &&
               (ready_run() >= wake_run_ ||
                (!goes_on && computing_.load(std::memory_order_relaxed) == 0));
        if (wake) consumer_waiting_ = false;
      }
      e.clear();
      if (input_failed) {
        ready_cv_.notify_all();
        space_cv_.notify_all();
        return;
      }
      if (wake) ready_cv_.notify_one();
    }
  }

  // How many elements are ready in a row for the consumer (mu_ held).
  int64_t ready_run() const {
    int64_t n = 0;
    while (n < cap_ && slots_[static_cast<std::size_t>((consumed_ + n) % cap_)].ready) ++n;
    return n;
  }

  // The input has ended: `end` elements exist.
  void finish(int64_t end) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      exhausted_ = true;
      end_seq_ = std::min(end_seq_, end);
    }
    ready_cv_.notify_all();
    space_cv_.notify_all();
  }

  MapFn fn_;
  const int64_t cap_;
  const int64_t wake_run_;  // see Note [Parallel map wake-ups]

  std::mutex in_mu_;  // guards in_->next, pulled_, in_done_
  int64_t pulled_ = 0;
  bool in_done_ = false;
  std::atomic<int> computing_{0};  // workers inside fn

  // guarded by mu_:
  std::vector<Slot> slots_;
  int64_t tickets_ = 0;
  int64_t consumed_ = 0;
  int64_t end_seq_ = std::numeric_limits<int64_t>::max();
  int space_waiters_ = 0;
  bool space_wake_pending_ = false;
  bool consumer_waiting_ = false;
  bool exhausted_ = false;
};

class MapNode : public UnaryNode {
 public:
  MapNode(std::shared_ptr<const Node> input, MapFn fn, int workers)
      : UnaryNode(std::move(input)), fn_(std::move(fn)), workers_(workers) {}
  std::unique_ptr<Stream> make_stream() const override {
    if (workers_ == 0) return std::make_unique<MapStream>(input_->make_stream(), fn_);
    return std::make_unique<ParallelMapStream>(input_->make_stream(), fn_, workers_);
  }
  int64_t cardinality() const override { return input_->cardinality(); }

 private:
  MapFn fn_;
  int workers_;
};

class FilterStream : public UnaryStream {
 public:
  FilterStream(std::unique_ptr<Stream> in, PredFn pred)
      : UnaryStream(std::move(in)), pred_(std::move(pred)) {}
  bool next(Element& out) override {
    while (in_->next(out))
      if (pred_(out)) return true;
    return false;
  }

 private:
  PredFn pred_;
};

class FilterNode : public UnaryNode {
 public:
  FilterNode(std::shared_ptr<const Node> input, PredFn pred)
      : UnaryNode(std::move(input)), pred_(std::move(pred)) {}
  std::unique_ptr<Stream> make_stream() const override {
    return std::make_unique<FilterStream>(input_->make_stream(), pred_);
  }
  int64_t cardinality() const override {
    return input_->cardinality() == Dataset::kInfinite ? Dataset::kInfinite : Dataset::kUnknown;
  }

 private:
  PredFn pred_;
};

class EnumerateStream : public UnaryStream {
 public:
  EnumerateStream(std::unique_ptr<Stream> in, int64_t start)
      : UnaryStream(std::move(in)), index_(start) {}
  bool next(Element& out) override {
    if (!in_->next(tmp_)) return false;
    out.clear();
    out.push_back(int64_scalar(index_++));
    for (Tensor& t : tmp_) out.push_back(std::move(t));
    return true;
  }

 private:
  int64_t index_;
  Element tmp_;
};

class EnumerateNode : public UnaryNode {
 public:
  EnumerateNode(std::shared_ptr<const Node> input, int64_t start)
      : UnaryNode(std::move(input)), start_(start) {}
  std::unique_ptr<Stream> make_stream() const override {
    return std::make_unique<EnumerateStream>(input_->make_stream(), start_);
  }
  int64_t cardinality() const override { return input_->cardinality(); }

 private:
  int64_t start_;
};

// ---- batch -------------------------------------------------------------------------

class BatchStream : public UnaryStream {
 public:
  BatchStream(std::unique_ptr<Stream> in, int64_t size, bool drop)
      : UnaryStream(std::move(in)), size_(size), drop_(drop), blocks_(in_->has_blocks()) {}

  bool next(Element& out) override { return blocks_ ? next_from_blocks(out) : next_stacked(out); }

 private:
  bool next_stacked(Element& out) {
    items_.clear();
    while (!in_done_ && static_cast<int64_t>(items_.size()) < size_) {
      Element e;
      if (!in_->next(e)) {
        in_done_ = true;
        break;
      }
      items_.push_back(std::move(e));
    }
    const std::size_t n = items_.size();
    if (n == 0 || (drop_ && static_cast<int64_t>(n) < size_)) return false;
    const std::size_t arity = items_[0].size();
    for (std::size_t i = 1; i < n; ++i)
      if (items_[i].size() != arity)
        throw ValueError(fmt::format(
            "batch: element {} of a batch has {} tensors but element 0 has {}", i,
            items_[i].size(), arity));
    out.clear();
    std::vector<Tensor> column(n);
    for (std::size_t c = 0; c < arity; ++c) {
      const Shape& s0 = items_[0][c].shape();
      for (std::size_t i = 0; i < n; ++i) {
        if (items_[i][c].shape() != s0)
          throw ShapeError(fmt::format(
              "batch: element {} of a batch has shape {} but element 0 has {} (tensor {} of the "
              "tuple)",
              i, shape_str(items_[i][c].shape()), shape_str(s0), c));
        column[i] = items_[i][c];
      }
      out.push_back(stack(column, 0));
    }
    items_.clear();
    return true;
  }

  bool next_from_blocks(Element& out) {
    if (in_done_) return false;
    int64_t got = 0;
    blocks_buf_.clear();
    while (got < size_) {
      Element b;
      const int64_t k = in_->next_block(size_ - got, b);
      if (k == 0) {
        in_done_ = true;
        break;
      }
      got += k;
      blocks_buf_.push_back(std::move(b));
    }
    if (got == 0 || (drop_ && got < size_)) return false;
    if (blocks_buf_.size() == 1) {
      out = std::move(blocks_buf_[0]);
    } else {
      out.clear();
      std::vector<Tensor> parts(blocks_buf_.size());
      for (std::size_t c = 0; c < blocks_buf_[0].size(); ++c) {
        for (std::size_t i = 0; i < blocks_buf_.size(); ++i) parts[i] = blocks_buf_[i][c];
        out.push_back(concat(parts, 0));
      }
    }
    blocks_buf_.clear();
    return true;
  }

  int64_t size_;
  bool drop_;
  bool blocks_;
  bool in_done_ = false;
  std::vector<Element> items_;
  std::vector<Element> blocks_buf_;
};

class BatchNode : public UnaryNode {
 public:
  BatchNode(std::shared_ptr<const Node> input, int64_t size, bool drop)
      : UnaryNode(std::move(input)), size_(size), drop_(drop) {}
  std::unique_ptr<Stream> make_stream() const override {
    return std::make_unique<BatchStream>(input_->make_stream(), size_, drop_);
  }
  int64_t cardinality() const override {
    const int64_t c = input_->cardinality();
    if (c < 0) return c;
    return drop_ ? c / size_ : (c + size_ - 1) / size_;
  }

 private:
  int64_t size_;
  bool drop_;
};

// ---- shuffle -----------------------------------------------------------------------

uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Note [Shuffle determinism]: SplitMix64 and a multiply-shift range reduction
// are written out here (rather than std::uniform_int_distribution, whose output
// differs between standard libraries) so that a seed means the same order everywhere.
class ShuffleStream : public UnaryStream {
 public:
  ShuffleStream(std::unique_ptr<Stream> in, int64_t buffer_size, uint64_t seed, uint64_t pass)
      : UnaryStream(std::move(in)),
        cap_(static_cast<std::size_t>(buffer_size)),
        state_(mix64(seed) ^ mix64(pass + 0x632BE59BD9B4E019ull)) {}

  bool next(Element& out) override {
    while (!in_done_ && buf_.size() < cap_) {
      Element e;
      if (!in_->next(e)) {
        in_done_ = true;
        break;
      }
      buf_.push_back(std::move(e));
    }
    if (buf_.empty()) return false;
    const std::size_t j = draw(buf_.size());
    out = std::move(buf_[j]);
    if (j + 1 != buf_.size()) buf_[j] = std::move(buf_.back());
    buf_.pop_back();
    return true;
  }

 private:
  std::size_t draw(std::size_t n) {
    state_ += 0x9E3779B97F4A7C15ull;
    const uint64_t r = mix64(state_);
    return static_cast<std::size_t>((static_cast<unsigned __int128>(r) * n) >> 64);
  }

  std::size_t cap_;
  uint64_t state_;
  bool in_done_ = false;
  std::vector<Element> buf_;
};

class ShuffleNode : public UnaryNode {
 public:
  ShuffleNode(std::shared_ptr<const Node> input, int64_t buffer_size, uint64_t seed, bool reshuffle)
      : UnaryNode(std::move(input)),
        buffer_size_(buffer_size),
        seed_(seed),
        reshuffle_(reshuffle) {}
  std::unique_ptr<Stream> make_stream() const override {
    const uint64_t pass = reshuffle_ ? passes_.fetch_add(1) : 0;
    return std::make_unique<ShuffleStream>(input_->make_stream(), buffer_size_, seed_, pass);
  }
  int64_t cardinality() const override { return input_->cardinality(); }

 private:
  int64_t buffer_size_;
  uint64_t seed_;
  bool reshuffle_;
  mutable std::atomic<uint64_t> passes_{0};  // passes started over this node (and its copies)
};

// ---- repeat, take, skip -------------------------------------------------------------

class RepeatStream : public Stream {
 public:
  RepeatStream(std::shared_ptr<const Node> input, int64_t count)
      : input_(std::move(input)), count_(count) {
    if (count_ != 0) {
      in_ = input_->make_stream();
      blocks_ = in_->has_blocks();
      passes_ = 1;
    }
  }

  bool next(Element& out) override {
    for (;;) {
      if (!in_ && !start_pass()) return false;
      if (in_->next(out)) {
        produced_ = true;
        return true;
      }
      if (!end_pass()) return false;
    }
  }
  bool has_blocks() const override { return blocks_; }
  int64_t next_block(int64_t max, Element& out) override {
    for (;;) {
      if (!in_ && !start_pass()) return 0;
      if (const int64_t k = in_->next_block(max, out)) {
        produced_ = true;
        return k;
      }
      if (!end_pass()) return 0;
    }
  }
  void cancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
    if (in_) in_->cancel();
  }

 private:
  bool start_pass() {
    if (count_ >= 0 && passes_ >= count_) return false;
    std::unique_ptr<Stream> s = input_->make_stream();
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_) return false;  // s is stopped and joined on the way out
    in_ = std::move(s);
    ++passes_;
    produced_ = false;
    return true;
  }
  // False when the pass that just ended was empty: repeating it would spin forever.
  bool end_pass() {
    std::unique_ptr<Stream> old;
    {
      std::lock_guard<std::mutex> lock(mu_);
      old = std::move(in_);
    }
    return produced_;
  }

  std::shared_ptr<const Node> input_;
  int64_t count_;
  int64_t passes_ = 0;
  bool produced_ = false;
  bool blocks_ = false;
  std::mutex mu_;  // guards in_ against cancel() from another thread while it is replaced
  bool cancelled_ = false;
  std::unique_ptr<Stream> in_;
};

class RepeatNode : public UnaryNode {
 public:
  RepeatNode(std::shared_ptr<const Node> input, int64_t count)
      : UnaryNode(std::move(input)), count_(count) {}
  std::unique_ptr<Stream> make_stream() const override {
    return std::make_unique<RepeatStream>(input_, count_);
  }
  int64_t cardinality() const override {
    const int64_t c = input_->cardinality();
    if (count_ == 0 || c == 0) return 0;
    if (c == Dataset::kInfinite) return c;
    if (count_ < 0) return c == Dataset::kUnknown ? c : Dataset::kInfinite;
    return c < 0 ? c : c * count_;
  }

 private:
  int64_t count_;
};

class TakeStream : public UnaryStream {
 public:
  TakeStream(std::unique_ptr<Stream> in, int64_t count)
      : UnaryStream(std::move(in)), left_(count) {}
  bool next(Element& out) override {
    if (left_ <= 0) return false;
    if (!in_->next(out)) {
      left_ = 0;
      return false;
    }
    --left_;
    return true;
  }
  bool has_blocks() const override { return in_->has_blocks(); }
  int64_t next_block(int64_t max, Element& out) override {
    if (left_ <= 0) return 0;
    const int64_t k = in_->next_block(std::min(max, left_), out);
    left_ = k == 0 ? 0 : left_ - k;
    return k;
  }

 private:
  int64_t left_;
};

class TakeNode : public UnaryNode {
 public:
  TakeNode(std::shared_ptr<const Node> input, int64_t count)
      : UnaryNode(std::move(input)), count_(count) {}
  std::unique_ptr<Stream> make_stream() const override {
    return std::make_unique<TakeStream>(input_->make_stream(), count_);
  }
  int64_t cardinality() const override {
    const int64_t c = input_->cardinality();
    if (count_ == 0) return 0;
    if (c == Dataset::kInfinite) return count_;
    return c < 0 ? c : std::min(c, count_);
  }

 private:
  int64_t count_;
};

class SkipStream : public UnaryStream {
 public:
  SkipStream(std::unique_ptr<Stream> in, int64_t count)
      : UnaryStream(std::move(in)), left_(count) {}
  bool next(Element& out) override {
    if (!skip_now()) return false;
    return in_->next(out);
  }
  bool has_blocks() const override { return in_->has_blocks(); }
  int64_t next_block(int64_t max, Element& out) override {
    if (!skip_now()) return 0;
    return in_->next_block(max, out);
  }

 private:
  // Drops the first elements once; false when the input ended while doing so.
  bool skip_now() {
    Element tmp;
    const bool blocks = in_->has_blocks();
    while (left_ > 0) {
      const int64_t k = blocks ? in_->next_block(std::min<int64_t>(left_, 4096), tmp)
                               : static_cast<int64_t>(in_->next(tmp));
      if (k == 0) {
        left_ = 0;
        ended_ = true;
      }
      left_ -= k;
    }
    return !ended_;
  }

  int64_t left_;
  bool ended_ = false;
};

class SkipNode : public UnaryNode {
 public:
  SkipNode(std::shared_ptr<const Node> input, int64_t count)
      : UnaryNode(std::move(input)), count_(count) {}
  std::unique_ptr<Stream> make_stream() const override {
    return std::make_unique<SkipStream>(input_->make_stream(), count_);
  }
  int64_t cardinality() const override {
    const int64_t c = input_->cardinality();
    return c < 0 ? c : std::max<int64_t>(0, c - count_);
  }

 private:
  int64_t count_;
};

// ---- prefetch ----------------------------------------------------------------------

// A producer thread runs the input and keeps up to `cap_` items in a queue; the
// end and an error travel through the queue too, so they arrive in order.
class PrefetchStream : public ThreadedStream {
 public:
  PrefetchStream(std::unique_ptr<Stream> in, int64_t cap)
      : ThreadedStream(std::move(in)), cap_(static_cast<std::size_t>(cap)) {
    start(1, [this] { produce(); });
  }
  ~PrefetchStream() override { stop_and_join(); }

  bool next(Element& out) override {
    if (finished_) return false;
    Item item;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // The waiting flags are cleared by whoever sends the wake-up, so that one
      // wait costs one futex wake (Note [Parallel map wake-ups]).
      while (queue_.empty() && !stop_) {
        consumer_waiting_ = true;
        ready_cv_.wait(lock);
      }
      consumer_waiting_ = false;
      if (queue_.empty()) return false;
      item = std::move(queue_.front());
      queue_.pop_front();
      const bool wake = producer_waiting_;
      producer_waiting_ = false;
      lock.unlock();
      if (wake) space_cv_.notify_one();
    }
    if (item.error) {
      finished_ = true;
      std::rethrow_exception(item.error);
    }
    if (item.end) {
      finished_ = true;
      return false;
    }
    out = std::move(item.value);
    return true;
  }

 private:
  struct Item {
    Element value;
    std::exception_ptr error;
    bool end = false;
  };

  void produce() {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        while (queue_.size() >= cap_ && !stop_) {
          producer_waiting_ = true;
          space_cv_.wait(lock);
        }
        producer_waiting_ = false;
        if (stop_) return;
      }
      Item item;
      try {
        item.end = !in_->next(item.value);
      } catch (...) {
        item.error = std::current_exception();
      }
      const bool last = item.end || item.error;
      bool wake;
      {
        std::lock_guard<std::mutex> lock(mu_);
        queue_.push_back(std::move(item));
        wake = consumer_waiting_;
        consumer_waiting_ = false;
      }
      if (wake) ready_cv_.notify_one();
      if (last) return;
    }
  }

  const std::size_t cap_;
  bool finished_ = false;  // consumer side only

  // guarded by mu_:
  std::deque<Item> queue_;
  bool consumer_waiting_ = false;
  bool producer_waiting_ = false;
};

class PrefetchNode : public UnaryNode {
 public:
  PrefetchNode(std::shared_ptr<const Node> input, int64_t cap)
      : UnaryNode(std::move(input)), cap_(cap) {}
  std::unique_ptr<Stream> make_stream() const override {
    return std::make_unique<PrefetchStream>(input_->make_stream(), cap_);
  }
  int64_t cardinality() const override { return input_->cardinality(); }

 private:
  int64_t cap_;
};

// ---- cache ---------------------------------------------------------------------------

struct CacheState {
  std::mutex mu;
  std::shared_ptr<const std::vector<Element>> elements;  // set by the first complete pass
};

class CacheStream : public Stream {
 public:
  CacheStream(const std::shared_ptr<const Node>& input, std::shared_ptr<CacheState> state)
      : state_(std::move(state)) {
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      replay_ = state_->elements;
    }
    if (!replay_) in_ = input->make_stream();
  }
  bool next(Element& out) override {
    if (replay_) {
      if (pos_ >= replay_->size()) return false;
      out = (*replay_)[pos_++];
      return true;
    }
    if (in_->next(out)) {
      filled_.push_back(out);
      return true;
    }
    // Only a complete pass is kept: a pass stopped early never gets here.
    std::lock_guard<std::mutex> lock(state_->mu);
    if (!state_->elements)
      state_->elements = std::make_shared<const std::vector<Element>>(std::move(filled_));
    return false;
  }
  void cancel() override {
    if (in_) in_->cancel();
  }

 private:
  std::shared_ptr<CacheState> state_;
  std::shared_ptr<const std::vector<Element>> replay_;
  std::size_t pos_ = 0;
  std::unique_ptr<Stream> in_;
  std::vector<Element> filled_;
};

class CacheNode : public UnaryNode {
 public:
  explicit CacheNode(std::shared_ptr<const Node> input)
      : UnaryNode(std::move(input)), state_(std::make_shared<CacheState>()) {}
  std::unique_ptr<Stream> make_stream() const override {
    return std::make_unique<CacheStream>(input_, state_);
  }
  int64_t cardinality() const override { return input_->cardinality(); }

 private:
  std::shared_ptr<CacheState> state_;
};

void check_count(const char* op, const char* what, int64_t n, int64_t min) {
  if (n < min)
    throw ValueError(fmt::format("{}: {} must be >= {} (got {})", op, what, min, n));
}

}  // namespace

// ---- SliceCursor ---------------------------------------------------------------------

SliceCursor::SliceCursor(std::vector<Tensor> parts)
    : parts_(std::move(parts)), rows_(parts_.empty() ? 0 : parts_[0].shape(0)) {}

bool SliceCursor::next(Element& out) {
  if (pos_ >= rows_) return false;
  out.clear();
  for (const Tensor& p : parts_) out.push_back(p.select(0, pos_));
  ++pos_;
  return true;
}

int64_t SliceCursor::next_block(int64_t max, Element& out) {
  const int64_t k = std::min(max, rows_ - pos_);
  if (k <= 0) return 0;
  out.clear();
  for (const Tensor& p : parts_) out.push_back(p.slice(0, pos_, pos_ + k).clone());
  pos_ += k;
  return k;
}

void check_sliceable(const std::vector<Tensor>& ts, const char* op) {
  if (ts.empty()) throw ValueError(fmt::format("{}: needs at least one tensor", op));
  for (std::size_t i = 0; i < ts.size(); ++i) {
    if (!ts[i].defined()) throw ValueError(fmt::format("{}: tensor {} is undefined", op, i));
    if (ts[i].dim() == 0)
      throw ShapeError(fmt::format("{}: tensor {} is 0-d; slicing needs at least 1 dim", op, i));
    if (ts[i].shape(0) != ts[0].shape(0))
      throw ShapeError(fmt::format(
          "{}: the tensors disagree in dim 0 (tensor 0 has {}, tensor {} has {})", op,
          ts[0].shape(0), i, ts[i].shape(0)));
  }
}

// ---- Dataset plumbing --------------------------------------------------------------

Dataset make_dataset(std::shared_ptr<const Node> node) { return Dataset(std::move(node)); }

struct IterState {
  std::unique_ptr<Stream> root;
  Element current;
  // Every stage upstream is told to stop before any of them is joined, so a
  // thread blocked on a queue of another stage wakes up (Note [Stream contract]).
  ~IterState() {
    if (root) root->cancel();
  }
};

}  // namespace detail

// ---- Dataset -------------------------------------------------------------------------

using detail::Node;

Dataset::Dataset() : node_(std::make_shared<detail::EmptyNode>()) {}

Dataset::Dataset(std::shared_ptr<const Node> node) : node_(std::move(node)) {}

Dataset Dataset::range(int64_t stop) { return range(0, stop, 1); }

Dataset Dataset::range(int64_t start, int64_t stop, int64_t step) {
  if (step == 0) throw ValueError("range: step must not be 0");
  int64_t count = 0;
  if (step > 0 && stop > start) count = (stop - start + step - 1) / step;
  if (step < 0 && stop < start) count = (start - stop - step - 1) / -step;
  return Dataset(std::make_shared<detail::RangeNode>(start, step, count));
}

Dataset Dataset::from_tensor_slices(const Tensor& t) {
  return from_tensor_slices(std::vector<Tensor>{t});
}

Dataset Dataset::from_tensor_slices(const std::vector<Tensor>& ts) {
  detail::check_sliceable(ts, "from_tensor_slices");
  return Dataset(std::make_shared<detail::SlicesNode>(ts));
}

Dataset Dataset::generator_impl(detail::GenFn gen) {
  return Dataset(std::make_shared<detail::GeneratorNode>(std::move(gen)));
}

Dataset Dataset::zip(const std::vector<Dataset>& datasets) {
  if (datasets.empty()) throw ValueError("zip: needs at least one dataset");
  std::vector<std::shared_ptr<const Node>> nodes;
  for (const Dataset& d : datasets) nodes.push_back(d.node_);
  return Dataset(std::make_shared<detail::ZipNode>(std::move(nodes)));
}

Dataset Dataset::zip(const Dataset& other) const { return zip({*this, other}); }

Dataset Dataset::map_impl(detail::MapFn fn, int parallel_calls, bool parallel) const {
  if (parallel && parallel_calls == kAutotune)
    parallel_calls = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  else if (parallel && parallel_calls < 1)
    throw ValueError(fmt::format(
        "map: parallel_calls must be >= 1 or Dataset::kAutotune (got {})", parallel_calls));
  return Dataset(std::make_shared<detail::MapNode>(node_, std::move(fn), parallel_calls));
}

Dataset Dataset::filter_impl(detail::PredFn pred) const {
  return Dataset(std::make_shared<detail::FilterNode>(node_, std::move(pred)));
}

Dataset Dataset::batch(int64_t size, bool drop_remainder) const {
  detail::check_count("batch", "the batch size", size, 1);
  return Dataset(std::make_shared<detail::BatchNode>(node_, size, drop_remainder));
}

Dataset Dataset::shuffle(int64_t buffer_size, std::optional<uint64_t> seed,
                         bool reshuffle_each_iteration) const {
  detail::check_count("shuffle", "buffer_size", buffer_size, 1);
  const uint64_t s = seed ? *seed
                          : static_cast<uint64_t>(randint(0, int64_t(1) << 62, {}).item<int64_t>());
  return Dataset(
      std::make_shared<detail::ShuffleNode>(node_, buffer_size, s, reshuffle_each_iteration));
}

Dataset Dataset::repeat(int64_t count) const {
  if (count < -1)
    throw ValueError(
        fmt::format("repeat: count must be >= 0, or -1 to repeat forever (got {})", count));
  return Dataset(std::make_shared<detail::RepeatNode>(node_, count));
}

Dataset Dataset::take(int64_t count) const {
  detail::check_count("take", "count", count, 0);
  return Dataset(std::make_shared<detail::TakeNode>(node_, count));
}

Dataset Dataset::skip(int64_t count) const {
  detail::check_count("skip", "count", count, 0);
  return Dataset(std::make_shared<detail::SkipNode>(node_, count));
}

Dataset Dataset::enumerate(int64_t start) const {
  return Dataset(std::make_shared<detail::EnumerateNode>(node_, start));
}

Dataset Dataset::prefetch(int64_t buffer_size) const {
  detail::check_count("prefetch", "buffer_size", buffer_size, 1);
  return Dataset(std::make_shared<detail::PrefetchNode>(node_, buffer_size));
}

Dataset Dataset::cache() const { return Dataset(std::make_shared<detail::CacheNode>(node_)); }

int64_t Dataset::cardinality() const { return node_->cardinality(); }

Dataset::Iterator Dataset::begin() const {
  auto state = std::make_unique<detail::IterState>();
  state->root = node_->make_stream();
  if (!state->root->next(state->current)) return Iterator();
  return Iterator(std::move(state));
}

// ---- Iterator ------------------------------------------------------------------------

Dataset::Iterator::Iterator() = default;
Dataset::Iterator::Iterator(std::unique_ptr<detail::IterState> state) : state_(std::move(state)) {}
Dataset::Iterator::Iterator(Iterator&&) noexcept = default;
Dataset::Iterator& Dataset::Iterator::operator=(Iterator&&) noexcept = default;
Dataset::Iterator::~Iterator() = default;

const Element& Dataset::Iterator::operator*() const {
  if (!state_) throw IndexError("Dataset::Iterator: dereferenced at the end");
  return state_->current;
}

Dataset::Iterator& Dataset::Iterator::operator++() {
  if (!state_) throw IndexError("Dataset::Iterator: incremented past the end");
  bool more;
  try {
    more = state_->root->next(state_->current);
  } catch (...) {
    state_.reset();
    throw;
  }
  if (!more) state_.reset();
  return *this;
}

}  // namespace ember::data
