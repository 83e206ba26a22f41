// The eager gradient tape: a Recorder that appends a Record for every op call
// that reads a watched value, and forwards every event to the recorder that
// was active before it (an outer tape, a tracer, the shim's graph builder).
//
// Note [Tapes chain recorders]: the dispatcher keeps one thread-local
// Recorder*, so with no tape (and no trace) the eager path pays nothing more
// than before. A tape installs itself and forwards to the previous recorder:
// inside capture::function the tracer still sees every op, including the ones
// a gradient computation runs; an outer tape sees an inner tape's gradient
// computation (second derivatives). While a tape computes its own gradient it
// is paused, so it never records itself.
#include <algorithm>
#include <unordered_map>

#include <fmt/format.h>

#include <ember/autograd.h>
#include <ember/creation.h>

#include "autograd/engine.h"
#include "autograd/rule.h"
#include "dispatch/dispatcher.h"
#include "dispatch/recorder.h"

namespace ember {

using dispatch::OpId;

namespace detail {

class Tape final : public dispatch::Recorder {
 public:
  Tape(bool persistent, bool watch_vars) : persistent_(persistent), watch_vars_(watch_vars) {
    prev_ = dispatch::set_recorder(this);
  }
  ~Tape() override {
    // Scopes end in reverse order; a tape ended out of order only stops recording.
    if (dispatch::current_recorder() == this) dispatch::set_recorder(prev_);
  }

  bool graph_mode() const override { return prev_ && prev_->graph_mode(); }
  bool builds(std::span<const Tensor> inputs) const override { return !prev_ || prev_->builds(inputs); }

  void before_inplace(OpId op, dispatch::Inputs inputs, const Tensor& out) override {
    if (active()) {
      // An in-place op on a tensor the tape recorded becomes a new value of that
      // tensor; a write through a view (or into a view's base) would change
      // other recorded values behind the tape's back.
      auto it = by_storage_.find(out.impl().storage.get());
      if (it != by_storage_.end())
        for (const void* impl : it->second)
          if (impl != out.impl_ptr())
            throw ValueError(fmt::format(
                "GradientTape: in-place {}_ writes into memory shared with another tensor the tape "
                "recorded (a view or its base); use the out-of-place op",
                dispatch::op_name(op)));
    }
    pending_version_ = out.impl().storage->version();
    if (prev_) prev_->before_inplace(op, inputs, out);
  }

  void record(OpId op, dispatch::Inputs inputs, const dispatch::Attrs& attrs, const Tensor& out,
              bool inplace) override {
    if (active()) add(op, inputs, attrs, out, inplace, false);
    if (prev_) prev_->record(op, inputs, attrs, out, inplace);
  }

  dispatch::TensorMeta infer(OpId op, dispatch::Inputs inputs, const dispatch::Attrs& attrs) override {
    return prev_ ? prev_->infer(op, inputs, attrs) : Recorder::infer(op, inputs, attrs);
  }

  Tensor build(OpId op, dispatch::Inputs inputs, const dispatch::Attrs& attrs,
               const dispatch::TensorMeta& meta) override {
    if (!prev_) return Recorder::build(op, inputs, attrs, meta);
    Tensor out = prev_->build(op, inputs, attrs, meta);
    if (active()) add(op, inputs, attrs, out, false, true);
    return out;
  }

  Shape static_shape(const Tensor& t) override { return prev_ ? prev_->static_shape(t) : t.shape(); }

  Tensor reshape_like(const Tensor& t, const Tensor& like) override {
    if (!prev_) return Recorder::reshape_like(t, like);
    Tensor out = prev_->reshape_like(t, like);
    if (active()) {
      dispatch::Attrs a;
      a.ints = out.shape();
      const Tensor in[1] = {t};
      add(OpId::reshape, in, a, out, false, true);
    }
    return out;
  }

  Tensor build_inplace(OpId op, dispatch::Inputs inputs, const dispatch::Attrs& attrs, const Tensor& out) override {
    if (!prev_) return Recorder::build_inplace(op, inputs, attrs, out);
    Tensor value = prev_->build_inplace(op, inputs, attrs, out);
    if (active()) add(op, inputs, attrs, value, true, true);
    return value;
  }

  void on_host_read(const Tensor& t) override {
    if (prev_) prev_->on_host_read(t);
  }

  Tensor on_variable_read(const Variable& v, const Tensor& value) override {
    Tensor t = prev_ ? prev_->on_variable_read(v, value) : value;
    if (active() && watch_vars_ && v.trainable() && is_floating(t.dtype())) watch_var(v, t);
    return t;
  }

  void on_variable_assign(const Variable& v, const Tensor& src, OpId kind) override {
    if (prev_) prev_->on_variable_assign(v, src, kind);
  }

  // ---- the API behind GradientTape ----
  void watch(const Tensor& t, const char* who) {
    if (!t.defined()) throw ValueError(fmt::format("{}: the tensor is undefined", who));
    if (!is_floating(t.dtype()))
      throw DTypeError(fmt::format(
          "{}: a tensor of dtype {} cannot be watched; only floating-point tensors have gradients",
          who, dtype_name(t.dtype())));
    id_of_or_new(t);
  }

  void watch_var(const Variable& v, const Tensor& t) {
    const int id = id_of_or_new(t);
    for (auto& [state, ids] : vars_) {
      if (state == v.state()) {
        if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
        return;
      }
    }
    vars_.push_back({v.state(), {id}});
  }

  std::vector<Tensor> gradient(const Tensor& target, std::vector<std::vector<int>> sources,
                               const std::vector<Tensor>& like, const Tensor* seed) {
    const char* who = "GradientTape::gradient";
    if (used_ && !persistent_)
      throw ValueError(fmt::format(
          "{}: a non-persistent tape can compute one gradient only; use GradientTape(true)", who));
    if (!target.defined()) throw ValueError(fmt::format("{}: the target is undefined", who));
    Tensor s;
    if (seed) {
      if (seed->shape() != target.shape())
        throw ShapeError(fmt::format("{}: output_gradient has shape {} but the target has {}", who,
                                     shape_str(seed->shape()), shape_str(target.shape())));
      s = *seed;
    }
    used_ = true;
    const bool was_paused = paused_;
    paused_ = true;  // this tape does not record its own gradient computation
    struct Restore {
      Tape* t;
      bool p;
      ~Restore() { t->paused_ = p || !t->persistent_; }
    } restore{this, was_paused};
    if (!s.defined()) s = ones_like(target);
    auto it = ids_.find(target.impl_ptr());
    const int tid = it == ids_.end() ? -1 : it->second;
    std::vector<Tensor> r = autograd::backward(prog_, {{tid, target, s}}, sources, like, who);
    if (!persistent_) {
      // Free what was saved; nothing more will be recorded.
      prog_ = {};
      ids_.clear();
      keep_.clear();
      by_storage_.clear();
    }
    return r;
  }

  std::vector<int> ids_of(const Tensor& t) const {
    auto it = ids_.find(t.impl_ptr());
    return it == ids_.end() ? std::vector<int>{} : std::vector<int>{it->second};
  }
  std::vector<int> ids_of(const Variable& v) const {
    for (const auto& [state, ids] : vars_)
      if (state == v.state()) return ids;
    return {};
  }
  std::vector<Variable> variables() const {
    std::vector<Variable> out;
    for (const auto& [state, ids] : vars_) out.emplace_back(state);
    return out;
  }

  bool persistent_;
  bool watch_vars_;
  bool paused_ = false;

 private:
  bool active() const { return !paused_ && !(used_ && !persistent_); }

  int id_of_or_new(const Tensor& t) {
    auto [it, fresh] = ids_.try_emplace(t.impl_ptr(), prog_.num_ids);
    if (fresh) {
      ++prog_.num_ids;
      keep_.push_back(t);  // keeps the address unique while the tape refers to it
      note_storage(t);
    }
    return it->second;
  }

  void add(OpId op, dispatch::Inputs inputs, const dispatch::Attrs& attrs, const Tensor& out,
           bool inplace, bool symbolic) {
    // Fast exit: an op on untracked values only is not recorded.
    bool any = false;
    for (const Tensor& t : inputs) any = any || ids_.count(t.impl_ptr());
    if (!any) return;
    autograd::Record r;
    r.op = op;
    r.attrs = attrs;
    for (const Tensor& t : inputs) {
      r.in.push_back(t);
      auto it = ids_.find(t.impl_ptr());
      r.in_ids.push_back(it == ids_.end() ? -1 : it->second);
      if (!symbolic) {
        // An in-place op's own destination was saved before the write.
        const bool dst = inplace && t.impl().storage.get() == out.impl().storage.get();
        r.in_versions.push_back(dst ? pending_version_ : t.impl().storage->version());
      }
    }
    if (inplace) {
      const auto meta = infer(op, inputs, attrs);
      r.out_shape = meta.shape;
      r.out_dtype = meta.dtype;
    } else {
      r.out_shape = out.shape();
      r.out_dtype = out.dtype();
    }
    r.out = out;
    if (!symbolic) r.out_version = out.impl().storage->version();
    // The result (for an in-place op: the destination's new value) gets a new id.
    r.out_id = prog_.num_ids++;
    ids_[out.impl_ptr()] = r.out_id;
    if (!symbolic) note_storage(out);
    prog_.records.push_back(std::move(r));
  }

  void note_storage(const Tensor& t) {
    if (t.impl().storage) by_storage_[t.impl().storage.get()].push_back(t.impl_ptr());
  }

  Recorder* prev_ = nullptr;
  bool used_ = false;
  uint32_t pending_version_ = 0;
  autograd::Program prog_;
  std::unordered_map<const void*, int> ids_;
  std::vector<Tensor> keep_;
  std::unordered_map<const void*, std::vector<const void*>> by_storage_;
  std::vector<std::pair<std::shared_ptr<Variable::State>, std::vector<int>>> vars_;
};

}  // namespace detail

GradientTape::GradientTape(bool persistent, bool watch_accessed_variables)
    : tape_(std::make_unique<detail::Tape>(persistent, watch_accessed_variables)) {}

GradientTape::~GradientTape() = default;

void GradientTape::watch(const Tensor& t) { tape_->watch(t, "GradientTape::watch"); }

void GradientTape::watch(const Variable& v) {
  if (!v.defined()) throw ValueError("GradientTape::watch: the variable is undefined");
  // In graph mode a read gives a symbolic value; eagerly it is the state itself.
  Tensor t;
  {
    const bool p = tape_->paused_;
    tape_->paused_ = true;  // the read below is not a use by the computation
    t = v.value();
    tape_->paused_ = p;
  }
  tape_->watch(t, "GradientTape::watch");
  tape_->watch_var(v, t);
}

std::vector<Tensor> GradientTape::gradient(const Tensor& target, const std::vector<Tensor>& sources) {
  std::vector<std::vector<int>> ids;
  for (std::size_t i = 0; i < sources.size(); ++i) {
    if (!sources[i].defined())
      throw ValueError(fmt::format("GradientTape::gradient: source {} is undefined", i));
    ids.push_back(tape_->ids_of(sources[i]));
  }
  return tape_->gradient(target, std::move(ids), sources, nullptr);
}

namespace {
std::vector<Tensor> like_of(const std::vector<Variable>& vs) {
  std::vector<Tensor> like;
  for (std::size_t i = 0; i < vs.size(); ++i) {
    if (!vs[i].defined())
      throw ValueError(fmt::format("GradientTape::gradient: source {} is an undefined variable", i));
    like.push_back(vs[i].state()->value);
  }
  return like;
}
}  // namespace

std::vector<Tensor> GradientTape::gradient(const Tensor& target, const std::vector<Variable>& sources) {
  std::vector<Tensor> like = like_of(sources);
  std::vector<std::vector<int>> ids;
  for (const Variable& v : sources) ids.push_back(tape_->ids_of(v));
  return tape_->gradient(target, std::move(ids), like, nullptr);
}

std::vector<Tensor> GradientTape::gradient(const Tensor& target, const std::vector<Tensor>& sources,
                                           const Tensor& output_gradient) {
  std::vector<std::vector<int>> ids;
  for (const Tensor& s : sources) ids.push_back(tape_->ids_of(s));
  return tape_->gradient(target, std::move(ids), sources, &output_gradient);
}

std::vector<Tensor> GradientTape::gradient(const Tensor& target, const std::vector<Variable>& sources,
                                           const Tensor& output_gradient) {
  std::vector<Tensor> like = like_of(sources);
  std::vector<std::vector<int>> ids;
  for (const Variable& v : sources) ids.push_back(tape_->ids_of(v));
  return tape_->gradient(target, std::move(ids), like, &output_gradient);
}

std::vector<Variable> GradientTape::watched_variables() const { return tape_->variables(); }
void GradientTape::pause() { tape_->paused_ = true; }
void GradientTape::resume() { tape_->paused_ = false; }
bool GradientTape::persistent() const { return tape_->persistent_; }

}  // namespace ember
