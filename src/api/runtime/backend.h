// InvocationBackend: what the runtime and /inferd/ front ends need from the asynchronous
// inference pipeline — exactly dispatch::Dispatcher's public operations. An interface only so the
// front ends' tests can answer with a fake; DispatcherBackend is the one real implementation.
//
// Threading contract (the Dispatcher's): Accept never blocks and may be called on an I/O thread,
// its `done` runs once on another thread; the other calls block (call them on the BlockingPool).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/result.h"
#include "dispatch/dispatcher.h"

namespace inferd::api::runtime {

class InvocationBackend {
 public:
  virtual ~InvocationBackend() = default;
  virtual void Accept(dispatch::AcceptRequest request,
                      std::function<void(Result<dispatch::Accepted>)> done) = 0;
  virtual Result<dispatch::SyncResponse> InvokeSync(const dispatch::SyncRequest& request) = 0;
  virtual Result<dispatch::InvocationStatus> Describe(const std::string& region,
                                                      const std::string& endpoint,
                                                      const std::string& inference_id) = 0;
  virtual Result<std::vector<dispatch::InvocationStatus>> List(
      const std::string& region, const std::string& endpoint,
      const std::vector<queue::InvocationState>& states, int64_t after_seq, int limit) = 0;
  virtual Result<dispatch::InvocationStatus> Cancel(const std::string& region,
                                                    const std::string& endpoint,
                                                    const std::string& inference_id) = 0;
  virtual std::string RenderMetrics() const = 0;
};

// Forwards every call to a Dispatcher (which must outlive it).
class DispatcherBackend final : public InvocationBackend {
 public:
  explicit DispatcherBackend(dispatch::Dispatcher& dispatcher) : d_(dispatcher) {}
  void Accept(dispatch::AcceptRequest request,
              std::function<void(Result<dispatch::Accepted>)> done) override {
    d_.Accept(std::move(request), std::move(done));
  }
  Result<dispatch::SyncResponse> InvokeSync(const dispatch::SyncRequest& request) override {
    return d_.InvokeSync(request);
  }
  Result<dispatch::InvocationStatus> Describe(const std::string& region,
                                              const std::string& endpoint,
                                              const std::string& inference_id) override {
    return d_.Describe(region, endpoint, inference_id);
  }
  Result<std::vector<dispatch::InvocationStatus>> List(
      const std::string& region, const std::string& endpoint,
      const std::vector<queue::InvocationState>& states, int64_t after_seq, int limit) override {
    return d_.List(region, endpoint, states, after_seq, limit);
  }
  Result<dispatch::InvocationStatus> Cancel(const std::string& region, const std::string& endpoint,
                                            const std::string& inference_id) override {
    return d_.Cancel(region, endpoint, inference_id);
  }
  std::string RenderMetrics() const override { return d_.RenderMetrics(); }

 private:
  dispatch::Dispatcher& d_;
};

}  // namespace inferd::api::runtime
