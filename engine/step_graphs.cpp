// The step runner's cache of decode-step recordings (step_graphs.h).
#include "step_graphs.h"

#include <algorithm>

namespace eet {

int32_t graph_context_bucket(int32_t max_ctx, int32_t max_context) {
  int64_t b = kGraphContextMin;
  while (b < max_ctx) b *= 2;
  return int32_t(std::max<int64_t>(std::min<int64_t>(b, max_context), max_ctx));
}

DeviceGraph* StepGraphs::find(const StepGraphKey& key) {
  for (auto it = graphs_.begin(); it != graphs_.end(); ++it) {
    if (it->key == key) {
      graphs_.splice(graphs_.begin(), graphs_, it);
      return graphs_.front().graph.get();
    }
  }
  return nullptr;
}

bool StepGraphs::seen_again(const StepGraphKey& key) {
  // A key seen once and never again must not pin memory forever: the set is bounded like the recordings.
  if (seen_.count(key)) return true;
  if (seen_.size() >= 4 * kMaxGraphs) seen_.clear();
  seen_.insert(key);
  return false;
}

DeviceGraph* StepGraphs::add(const StepGraphKey& key, std::unique_ptr<DeviceGraph> graph) {
  graphs_.push_front(Entry{key, std::move(graph)});
  while (graphs_.size() > kMaxGraphs) {
    seen_.erase(graphs_.back().key);
    graphs_.pop_back();
  }
  return graphs_.front().graph.get();
}

void StepGraphs::clear() {
  graphs_.clear();
  seen_.clear();
}

}  // namespace eet
