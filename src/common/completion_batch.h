// CompletionBatch: groups the hand-offs one thread makes to other threads while it completes many
// operations in a row — the invocation queue's writer running the callbacks of one commit, each
// of which answers an HTTP request. Without it, every callback wakes an I/O thread on its own
// (a lock and a wake-up per request); inside a batch, a component that supports it (http::Server
// for responses) queues its hand-offs with OnEnd and sends them together when the batch ends.
//
//   {
//     CompletionBatch batch;           // on the completing thread
//     for (auto& op : done) op.callback(result);   // callbacks that respond to requests
//   }                                  // ← the grouped hand-offs leave here
//
// Batches nest (the outermost one flushes) and are per thread. Code that never opens one behaves
// as before: Active() is false and hand-offs go out one by one. A flush must not throw and must
// not block; it may open a batch itself (that one flushes on its own).
#pragma once

#include <functional>

namespace inferd {

class CompletionBatch {
 public:
  CompletionBatch();
  // The outermost batch runs the flushes registered on this thread, in registration order.
  ~CompletionBatch();
  CompletionBatch(const CompletionBatch&) = delete;
  CompletionBatch& operator=(const CompletionBatch&) = delete;

  // Whether a batch is open on this thread.
  static bool Active();
  // Inside a batch: runs `flush` when the outermost batch ends, once per `key` (a later call
  // with the same key in the same batch is ignored). Outside a batch: runs `flush` at once.
  static void OnEnd(const void* key, std::function<void()> flush);
};

}  // namespace inferd
