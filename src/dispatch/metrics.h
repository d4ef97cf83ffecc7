// Metrics: SageMaker's asynchronous-inference CloudWatch metrics (spec §6) as Prometheus
// series. Counters and summaries accumulate here; the per-endpoint gauges are computed by the
// caller at render time and passed in.
//
// SageMaker name                      → Prometheus series (labels)
//   ApproximateBacklogSize            → inferd_approximate_backlog_size{endpoint}
//   ApproximateBacklogSizePerInstance → inferd_approximate_backlog_size_per_instance{endpoint}
//   ApproximateAgeOfOldestRequest     → inferd_approximate_age_of_oldest_request_seconds{endpoint}
//   HasBacklogWithoutCapacity         → inferd_has_backlog_without_capacity{endpoint}
//   InvocationsProcesssed             → inferd_invocations_processed_total{endpoint,variant}
//   InvocationFailures                → inferd_invocation_failures_total{endpoint,variant}
//   ExpiredRequests                   → inferd_expired_requests_total{endpoint,variant}
//   RequestDownloadFailures           → inferd_request_download_failures_total{endpoint,variant}
//   ResponseUploadFailures            → inferd_response_upload_failures_total{endpoint,variant}
//   NotificationFailures              → inferd_notification_failures_total{endpoint,variant}
//   Invocation4XXErrors / 5XXErrors   → inferd_invocation_4xx_errors_total / _5xx_errors_total
//   TimeInBacklog                     → inferd_time_in_backlog_milliseconds (summary)
//   TotalProcessingTime               → inferd_total_processing_time_milliseconds (summary)
//   ModelLatency                      → inferd_model_latency_microseconds (summary)
// Summaries expose _sum and _count (no quantiles). `variant` is "" for invocations that never
// reached a variant (expired, cancelled, endpoint deleted, input missing before a variant...).
//
// Thread-safe (one mutex; updates are a map lookup and an add).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace inferd::dispatch {

enum class Counter {
  kInvocationsProcessed,
  kInvocationFailures,
  kExpiredRequests,
  kRequestDownloadFailures,
  kResponseUploadFailures,
  kNotificationFailures,
  kInvocation4xxErrors,
  kInvocation5xxErrors,
};
inline constexpr int kCounterCount = 8;

enum class Summary { kTimeInBacklog, kTotalProcessingTime, kModelLatency };
inline constexpr int kSummaryCount = 3;

struct EndpointGauges {
  std::string endpoint;
  int64_t backlog = 0;  // queued + in progress
  int instances = 0;
  double oldest_age_seconds = 0;  // 0 with an empty queue
  int64_t queued = 0;             // waiting for a slot (for HasBacklogWithoutCapacity)
};

class Metrics {
 public:
  void Add(Counter counter, const std::string& endpoint, const std::string& variant, int64_t n = 1);
  void Observe(Summary summary, const std::string& endpoint, const std::string& variant,
               double value);

  int64_t Get(Counter counter, const std::string& endpoint, const std::string& variant) const;
  // {sum, count}
  std::pair<double, int64_t> Get(Summary summary, const std::string& endpoint,
                                 const std::string& variant) const;

  // Prometheus text exposition format (version 0.0.4), HELP and TYPE for every family.
  std::string Render(const std::vector<EndpointGauges>& gauges) const;

 private:
  struct Series {
    int64_t counters[kCounterCount] = {};
    double sums[kSummaryCount] = {};
    int64_t counts[kSummaryCount] = {};
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, Series> series_;  // (endpoint, variant)
};

}  // namespace inferd::dispatch
