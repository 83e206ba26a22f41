#pragma once
// Input pipelines in the style of tf.data: a Dataset describes how elements
// are made; each range-for over it (each Iterator) runs that description anew.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <ember/dtype.h>
#include <ember/tensor.h>

namespace ember::data {

/// One element of a dataset: a Tensor, or a tuple of Tensors such as (features, labels).
/// Converts to a Tensor when it holds exactly one, so `for (Tensor v : ds)` works.
class Element {
 public:
  Element() = default;
  /// An element of one tensor.
  Element(Tensor t);  // NOLINT: implicit on purpose (map may return a Tensor)
  /// A tuple of tensors, in order.
  Element(std::initializer_list<Tensor> ts);
  /// A tuple of tensors, in order.
  explicit Element(std::vector<Tensor> ts);
  /// A tuple of tensors from a std::tuple of Tensors.
  template <class... Ts>
    requires(std::is_convertible_v<Ts, Tensor> && ...)
  Element(const std::tuple<Ts...>& t) {  // NOLINT: implicit like the Tensor case
    std::apply([this](const auto&... x) { (push_back(Tensor(x)), ...); }, t);
  }
  /// A pair of tensors (features, labels).
  template <class A, class B>
    requires(std::is_convertible_v<A, Tensor> && std::is_convertible_v<B, Tensor>)
  Element(const std::pair<A, B>& p) {  // NOLINT
    push_back(Tensor(p.first));
    push_back(Tensor(p.second));
  }
  Element(const Element& o);
  Element(Element&& o) noexcept;
  Element& operator=(const Element& o);
  Element& operator=(Element&& o) noexcept;
  ~Element() = default;

  /// Number of tensors in the tuple.
  std::size_t size() const { return size_; }
  /// True for a default-constructed element.
  bool empty() const { return size_ == 0; }
  /// The i-th tensor (unchecked).
  Tensor& operator[](std::size_t i) { return data()[i]; }
  /// The i-th tensor (unchecked).
  const Tensor& operator[](std::size_t i) const { return data()[i]; }
  /// The i-th tensor; IndexError when i >= size().
  const Tensor& at(std::size_t i) const;
  /// The only tensor; ValueError unless size() == 1.
  const Tensor& tensor() const;
  /// Same as tensor().
  operator Tensor() const { return tensor(); }  // NOLINT: implicit on purpose
  /// Appends a tensor to the tuple.
  void push_back(Tensor t);
  /// Removes every tensor.
  void clear();
  /// The tensors as a vector (copies share storage).
  std::vector<Tensor> to_vector() const { return {begin(), end()}; }

  /// First tensor, for range-for over the tuple.
  Tensor* begin() { return data(); }
  /// One past the last tensor.
  Tensor* end() { return data() + size_; }
  /// First tensor, for range-for over the tuple.
  const Tensor* begin() const { return data(); }
  /// One past the last tensor.
  const Tensor* end() const { return data() + size_; }

 private:
  // Note [Element inline storage]: most elements hold one to three tensors;
  // keeping those inline saves a heap allocation per element on every stage.
  static constexpr std::size_t kInline = 3;
  Tensor* data() { return size_ <= kInline ? inline_ : heap_.data(); }
  const Tensor* data() const { return size_ <= kInline ? inline_ : heap_.data(); }

  Tensor inline_[kInline];
  std::vector<Tensor> heap_;  // all tensors once there are more than kInline
  std::size_t size_ = 0;
};

/// How Dataset::from_csv reads one column.
struct CsvColumn {
  std::string name;            ///< the name in the header line
  std::optional<DType> dtype;  ///< any dtype (float16/bfloat16 parse as float, then round); inferred if empty
};

/// Options for Dataset::from_csv.
struct CsvOptions {
  char delimiter = ',';  ///< field separator; fields may be double-quoted
  /// Columns to read, in element order; empty reads every column in file order.
  /// An inferred column is int64 when every value is an integer, bool when every
  /// value is true/false, float32 otherwise.
  std::vector<CsvColumn> columns;
};

class Dataset;

namespace detail {
class Node;
struct IterState;
using MapFn = std::function<Element(const Element&)>;
using PredFn = std::function<bool(const Element&)>;
using GenFn = std::function<bool(Element&)>;

/// Wraps an internal node (used by the readers).
Dataset make_dataset(std::shared_ptr<const Node> node);
[[noreturn]] void throw_arity(const char* op, std::size_t takes, std::size_t got);
/// The truth value of a predicate's Tensor result (one element, any dtype).
bool truth(const char* op, const Tensor& t);

template <class F, std::size_t... I>
decltype(auto) call_spread(F& f, const Element& e, std::index_sequence<I...>) {
  return f(e[I]...);
}

// Calls `f` with the element itself, or with its tensors spread over the
// arguments when `f` takes two to four Tensors.
template <class F>
decltype(auto) call_with(F& f, const Element& e, const char* op) {
  if constexpr (std::is_invocable_v<F&, const Element&>) {
    return f(e);
  } else if constexpr (std::is_invocable_v<F&, const Tensor&, const Tensor&>) {
    if (e.size() != 2) throw_arity(op, 2, e.size());
    return call_spread(f, e, std::make_index_sequence<2>());
  } else if constexpr (std::is_invocable_v<F&, const Tensor&, const Tensor&, const Tensor&>) {
    if (e.size() != 3) throw_arity(op, 3, e.size());
    return call_spread(f, e, std::make_index_sequence<3>());
  } else {
    static_assert(std::is_invocable_v<F&, const Tensor&, const Tensor&, const Tensor&,
                                      const Tensor&>,
                  "the function must take an Element, a Tensor, or 2 to 4 Tensors");
    if (e.size() != 4) throw_arity(op, 4, e.size());
    return call_spread(f, e, std::make_index_sequence<4>());
  }
}
}  // namespace detail

/// A pipeline of elements. Copies are cheap and share the (immutable) description;
/// every transformation returns a new Dataset and leaves *this unchanged.
class Dataset {
 public:
  /// cardinality() of a dataset that never ends.
  static constexpr int64_t kInfinite = -1;
  /// cardinality() when only iterating can tell (filter, generators, files).
  static constexpr int64_t kUnknown = -2;
  /// map(fn, kAutotune): one worker thread per hardware thread.
  static constexpr int kAutotune = -1;

  class Iterator;

  /// An empty dataset.
  Dataset();

  // ---- sources -----------------------------------------------------------
  /// 0, 1, ..., stop-1 as 0-d int64 tensors.
  static Dataset range(int64_t stop);
  /// start, start+step, ... up to (not including) stop, as 0-d int64 tensors; step != 0.
  static Dataset range(int64_t start, int64_t stop, int64_t step = 1);
  /// The slices t[0], t[1], ... along dim 0 (views of t).
  static Dataset from_tensor_slices(const Tensor& t);
  /// Tuples (ts[0][i], ts[1][i], ...); every tensor must have the same size in dim 0.
  static Dataset from_tensor_slices(const std::vector<Tensor>& ts);
  /// Elements from `gen()`, which returns std::optional of a Tensor, Element or tuple;
  /// std::nullopt ends the dataset. Each iteration starts from a fresh copy of `gen`.
  template <class F>
  static Dataset from_generator(F gen);
  /// The slices along dim 0 of the array in a .npy file, read when iteration reaches it.
  static Dataset from_npy(const std::string& path);
  /// The slices along dim 0 of each file in turn (one file in memory at a time);
  /// every file must have the same dtype and the same shape after dim 0.
  static Dataset from_npy(const std::vector<std::string>& paths);
  /// Rows of a CSV file with a header line, read and parsed now: each element is a
  /// tuple of 0-d tensors, one per column. A bad value raises ValueError naming the
  /// file, line and column.
  static Dataset from_csv(const std::string& path, const CsvOptions& options = {});
  /// Elements of all datasets side by side (their tensors concatenated into one tuple);
  /// stops with the shortest.
  static Dataset zip(const std::vector<Dataset>& datasets);
  /// Same as zip(std::vector) (also makes `zip({a})` and `zip({})` unambiguous).
  static Dataset zip(std::initializer_list<Dataset> datasets) {
    return zip(std::vector<Dataset>(datasets));
  }

  // ---- transformations ---------------------------------------------------
  /// fn(element) for each element, on the consuming thread. fn takes an Element, a
  /// Tensor, or 2-4 Tensors (the tuple spread) and returns a Tensor, an Element or a tuple.
  template <class F>
  Dataset map(F fn) const;
  /// Like map(fn), on `parallel_calls` worker threads (or kAutotune); the output keeps
  /// the input order, with up to max(32, 8 * parallel_calls) results computed ahead.
  /// fn is called concurrently and must be thread-safe.
  template <class F>
  Dataset map(F fn, int parallel_calls) const;
  /// The elements for which pred (same arguments as map) returns true (a bool or a
  /// one-element tensor).
  template <class F>
  Dataset filter(F pred) const;
  /// Stacks `size` consecutive elements (per tensor of the tuple) along a new dim 0;
  /// a shorter last batch is kept unless drop_remainder.
  Dataset batch(int64_t size, bool drop_remainder = false) const;
  /// Random order from a buffer of `buffer_size` elements. The same seed gives the same
  /// orders; each pass over the dataset gets a new order unless reshuffle_each_iteration
  /// is false. Without a seed, one is drawn from ember's default generator (manual_seed).
  Dataset shuffle(int64_t buffer_size, std::optional<uint64_t> seed = {},
                  bool reshuffle_each_iteration = true) const;
  /// The elements `count` times over; -1 (the default) repeats forever.
  Dataset repeat(int64_t count = -1) const;
  /// At most the first `count` elements.
  Dataset take(int64_t count) const;
  /// All but the first `count` elements.
  Dataset skip(int64_t count) const;
  /// Dataset::zip({*this, other}).
  Dataset zip(const Dataset& other) const;
  /// Tuples (index, tensors...) with a 0-d int64 index counting from `start`.
  Dataset enumerate(int64_t start = 0) const;
  /// Produces up to `buffer_size` elements ahead on a background thread.
  Dataset prefetch(int64_t buffer_size = 1) const;
  /// Keeps the elements in memory after the first complete pass; later passes replay them
  /// (the tensors are shared, not copied).
  Dataset cache() const;

  /// The number of elements, kInfinite, or kUnknown.
  int64_t cardinality() const;

  /// Starts a pass: builds the pipeline (threads included) and produces the first element.
  Iterator begin() const;
  /// The end of every pass (Dataset is a std::ranges::input_range).
  std::default_sentinel_t end() const { return {}; }

 private:
  friend Dataset detail::make_dataset(std::shared_ptr<const detail::Node> node);
  explicit Dataset(std::shared_ptr<const detail::Node> node);
  static Dataset generator_impl(detail::GenFn gen);
  // parallel_calls 0: on the consumer's thread (map without parallel_calls).
  Dataset map_impl(detail::MapFn fn, int parallel_calls, bool parallel) const;
  Dataset filter_impl(detail::PredFn pred) const;

  std::shared_ptr<const detail::Node> node_;
};

/// A pass over a Dataset (move-only input iterator). Errors raised while producing an
/// element (in map, filter, a generator or a reader) are rethrown from the operator++
/// (or begin()) that reaches that element, after which the iterator equals end().
/// Destroying it stops and joins the pass's threads.
class Dataset::Iterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = Element;
  using difference_type = std::ptrdiff_t;
  using pointer = const Element*;
  using reference = const Element&;

  /// The end iterator.
  Iterator();
  Iterator(Iterator&&) noexcept;
  Iterator& operator=(Iterator&&) noexcept;
  ~Iterator();

  /// The current element; IndexError at the end.
  const Element& operator*() const;
  /// The current element's address; IndexError at the end.
  const Element* operator->() const { return &**this; }
  /// Moves to the next element (may rethrow an error from the pipeline).
  Iterator& operator++();
  /// Same as ++it.
  void operator++(int) { ++*this; }
  /// True when both are at the end, or both are the same pass.
  friend bool operator==(const Iterator& a, const Iterator& b) { return a.state_ == b.state_; }
  /// True at the end of the pass.
  friend bool operator==(const Iterator& a, std::default_sentinel_t) { return !a.state_; }

 private:
  friend class Dataset;
  explicit Iterator(std::unique_ptr<detail::IterState> state);
  std::unique_ptr<detail::IterState> state_;
};

// ---- definitions of the templates ------------------------------------------

template <class F>
Dataset Dataset::from_generator(F gen) {
  return generator_impl([gen = std::move(gen)](Element& out) mutable {
    auto r = gen();
    if (!r) return false;
    out = Element(std::move(*r));
    return true;
  });
}

template <class F>
Dataset Dataset::map(F fn) const {
  return map_impl(
      [fn = std::move(fn)](const Element& e) mutable {
        return Element(detail::call_with(fn, e, "map"));
      },
      0, false);
}

template <class F>
Dataset Dataset::map(F fn, int parallel_calls) const {
  // Workers share one copy of fn, so it is called through a const reference.
  return map_impl(
      [fn = std::move(fn)](const Element& e) { return Element(detail::call_with(fn, e, "map")); },
      parallel_calls, true);
}

template <class F>
Dataset Dataset::filter(F pred) const {
  return filter_impl([pred = std::move(pred)](const Element& e) mutable {
    auto r = detail::call_with(pred, e, "filter");
    if constexpr (std::is_convertible_v<decltype(r), Tensor>)
      return detail::truth("filter", r);
    else
      return static_cast<bool>(r);
  });
}

}  // namespace ember::data
