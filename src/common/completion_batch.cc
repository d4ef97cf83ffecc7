#include "common/completion_batch.h"

#include <utility>
#include <vector>

namespace inferd {
namespace {

struct BatchState {
  int depth = 0;
  std::vector<std::pair<const void*, std::function<void()>>> flushes;
};

BatchState& State() {
  thread_local BatchState state;
  return state;
}

}  // namespace

CompletionBatch::CompletionBatch() { ++State().depth; }

CompletionBatch::~CompletionBatch() {
  BatchState& state = State();
  if (--state.depth > 0) return;
  // A flush may open a batch of its own and register more: take the list first.
  while (!state.flushes.empty()) {
    auto flushes = std::exchange(state.flushes, {});
    for (auto& [key, flush] : flushes) flush();
  }
}

bool CompletionBatch::Active() { return State().depth > 0; }

void CompletionBatch::OnEnd(const void* key, std::function<void()> flush) {
  BatchState& state = State();
  if (state.depth == 0) {
    flush();
    return;
  }
  for (const auto& entry : state.flushes) {
    if (entry.first == key) return;
  }
  state.flushes.emplace_back(key, std::move(flush));
}

}  // namespace inferd
