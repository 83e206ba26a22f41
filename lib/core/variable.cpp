#include <ember/ops.h>
#include <ember/variable.h>

#include <atomic>

#include <fmt/format.h>

#include "dispatch/recorder.h"

namespace ember {

namespace {
std::atomic<uint64_t> g_next_id{1};
}

Variable::Variable(const Tensor& initial, std::string name, bool trainable) {
  if (!initial.defined()) throw ValueError("Variable: the initial value is an undefined tensor");
  auto s = std::make_shared<State>();
  // The initial value is copied outside any trace: it is state, not a traced op.
  dispatch::RecorderGuard off(nullptr);
  s->value = initial.clone();
  s->id = g_next_id.fetch_add(1);
  s->trainable = trainable;
  s->name = name.empty() ? fmt::format("variable_{}", s->id) : std::move(name);
  state_ = std::move(s);
}

const Variable::State& Variable::st(const char* op) const {
  if (!state_) throw ValueError(fmt::format("Variable::{}: the variable is undefined", op));
  return *state_;
}

Tensor Variable::value() const {
  const State& s = st("value");
  if (auto* r = dispatch::current_recorder()) [[unlikely]]
    return r->on_variable_read(*this, s.value);
  return s.value;
}

namespace {
void write(const Variable& v, const Tensor& src, const char* op, dispatch::OpId kind) {
  Tensor dst = v.state()->value;
  if (!src.defined()) throw ValueError(fmt::format("Variable::{}: the value is an undefined tensor", op));
  if (broadcast_shapes(src.shape(), dst.shape(), op) != dst.shape())
    throw ShapeError(fmt::format("Variable::{}: a value of shape {} does not fit variable \"{}\" of shape {}",
                                 op, shape_str(src.shape()), v.name(), shape_str(dst.shape())));
  auto* r = dispatch::current_recorder();
  if (r && r->graph_mode()) [[unlikely]] {
    r->on_variable_assign(v, src, kind);
    return;
  }
  {
    // The in-place kernel itself is not a traced op: the recorder hears about
    // the assignment as one event below.
    dispatch::RecorderGuard off(nullptr);
    switch (kind) {
      case dispatch::OpId::add: dst.add_(src); break;
      case dispatch::OpId::sub: dst.sub_(src); break;
      default: dst.copy_(src); break;
    }
  }
  if (r) [[unlikely]]
    r->on_variable_assign(v, src, kind);
}
}  // namespace

void Variable::assign(const Tensor& v) {
  st("assign");
  write(*this, v, "assign", dispatch::OpId::copy);
}
void Variable::assign_add(const Tensor& v) {
  st("assign_add");
  write(*this, v, "assign_add", dispatch::OpId::add);
}
void Variable::assign_sub(const Tensor& v) {
  st("assign_sub");
  write(*this, v, "assign_sub", dispatch::OpId::sub);
}

const std::string& Variable::name() const { return st("name").name; }
bool Variable::trainable() const { return st("trainable").trainable; }
const Shape& Variable::shape() const { return st("shape").value.shape(); }
DType Variable::dtype() const { return st("dtype").value.dtype(); }
Device Variable::device() const { return st("device").value.device(); }
uint64_t Variable::id() const { return st("id").id; }

}  // namespace ember
