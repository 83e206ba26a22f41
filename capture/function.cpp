// capture::function's cache: keyed by the arguments' signature; a miss traces,
// a hit replays; a failed guard traces again and keeps both graphs.
#include <cstdio>

#include <fmt/format.h>

#include <ember/capture.h>

#include "compiled.h"
#include "dispatch/recorder.h"

namespace ember::capture::detail {

std::string FunctionCore::arg_name(std::size_t i) const {
  return i < names_.size() && !names_[i].empty() ? names_[i] : fmt::format("arg{}", i);
}

std::string FunctionCore::key_of(const std::vector<ArgSig>& sig) const {
  std::string k;
  for (const ArgSig& a : sig) k += a.text + ";";
  return k;
}

int FunctionCore::trace_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return traces_;
}

std::vector<std::string> FunctionCore::retrace_reasons() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reasons_;
}

Graph FunctionCore::graph_for(std::vector<ArgSig>& sig) const {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string key = key_of(sig);
  for (const auto& [k, entries] : cache_)
    if (k == key && !entries.empty()) return entries.back().graph;
  throw ValueError("capture::function: no graph was traced for these arguments yet");
}

std::vector<Tensor> FunctionCore::call(std::vector<ArgSig>& sig, const std::vector<Tensor>& tensors,
                                       const std::function<std::vector<Tensor>(std::string*)>& eager) {
  std::string structure;
  // Inside another trace the function is inlined: its ops join the outer graph.
  if (dispatch::current_recorder()) return eager(&structure);
  const std::string key = key_of(sig);
  std::vector<Entry> candidates;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [k, entries] : cache_)
      if (k == key) candidates.assign(entries.rbegin(), entries.rend());
  }
  std::string guard_reason;
  for (const Entry& e : candidates) {
    try {
      std::vector<Tensor> r = e.graph.impl().exec->run(e.graph.impl().optimized, tensors);
      retrace_streak_.store(0, std::memory_order_relaxed);
      return r;
    } catch (const GuardFailed& g) {
      guard_reason = g.what;
    }
  }
  // Trace: run the function eagerly while recording.
  std::vector<std::string> names;
  for (const ArgSig& a : sig)
    if (a.tensor) names.push_back(a.name);
  auto [graph, outs] = trace_list([&](const std::vector<Tensor>&) { return eager(&structure); },
                                  tensors, names, opts_);
  std::lock_guard<std::mutex> lock(mu_);
  if (traces_ > 0) {
    std::string why;
    if (!guard_reason.empty()) {
      why = guard_reason;
    } else if (last_sig_.size() != sig.size()) {
      why = fmt::format("{} arguments instead of {}", sig.size(), last_sig_.size());
    } else {
      for (std::size_t i = 0; i < sig.size(); ++i)
        if (sig[i].text != last_sig_[i].text)
          why += fmt::format("{}{}: {} -> {}", why.empty() ? "" : ", ", sig[i].name, last_sig_[i].text,
                             sig[i].text);
      if (why.empty()) why = "arguments seen before, traced again";
    }
    reasons_.push_back(why);
    if (++retrace_streak_ >= 5 && !warned_) {
      warned_ = true;
      std::fprintf(stderr,
                   "ember: warning: capture::function traced 5 times in a row (last: %s); "
                   "varying shapes or non-tensor arguments defeat the cache\n",
                   why.c_str());
    }
  }
  ++traces_;
  last_sig_ = sig;
  bool found = false;
  for (auto& [k, entries] : cache_)
    if (k == key) {
      entries.push_back({graph, structure});
      found = true;
    }
  if (!found) cache_.push_back({key, {Entry{graph, structure}}});
  return outs;
}

}  // namespace ember::capture::detail
