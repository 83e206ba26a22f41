#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include <ember/tensor.h>

namespace ember {

/// Mutable state with a stable identity (model weights, counters). Copies of a
/// Variable refer to the same state. Traced graphs read a Variable by reference
/// (a replay sees its current value) and replay its assignments.
class Variable {
 public:
  /// An undefined variable.
  Variable() = default;
  /// A variable holding a private copy of `initial`. A trainable one is watched
  /// by every active GradientTape that sees it read (see ember/autograd.h).
  explicit Variable(const Tensor& initial, std::string name = "", bool trainable = true);

  bool defined() const { return static_cast<bool>(state_); }
  /// The current value (shares storage with the variable: it sees later assignments).
  Tensor value() const;
  /// Overwrites the value in place; `v` is broadcast and cast to the variable's shape and dtype.
  void assign(const Tensor& v);
  /// value += v, in place.
  void assign_add(const Tensor& v);
  /// value -= v, in place.
  void assign_sub(const Tensor& v);

  const std::string& name() const;
  /// Whether gradient tapes watch this variable automatically.
  bool trainable() const;
  const Shape& shape() const;
  DType dtype() const;
  Device device() const;
  /// A process-unique id (graphs use it to refer to the variable).
  uint64_t id() const;
  /// The same state (copies compare equal).
  friend bool operator==(const Variable& a, const Variable& b) { return a.state_ == b.state_; }

  /// The shared state (graphs hold it to read and write the variable by reference).
  struct State {
    Tensor value;
    std::string name;
    uint64_t id = 0;
    bool trainable = true;
  };
  explicit Variable(std::shared_ptr<State> s) : state_(std::move(s)) {}
  const std::shared_ptr<State>& state() const { return state_; }

 private:
  const State& st(const char* op) const;
  std::shared_ptr<State> state_;
};

}  // namespace ember
