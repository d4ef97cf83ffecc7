#include "dispatch/metrics.h"

#include <fmt/format.h>

namespace inferd::dispatch {

namespace {

struct Family {
  const char* name;
  const char* help;
};

constexpr Family kCounters[kCounterCount] = {
    {"inferd_invocations_processed_total",
     "Asynchronous invocations processed (SageMaker InvocationsProcesssed)."},
    {"inferd_invocation_failures_total",
     "Asynchronous invocations that failed for any reason (SageMaker InvocationFailures)."},
    {"inferd_expired_requests_total",
     "Invocations that waited longer than RequestTTLSeconds (SageMaker ExpiredRequests)."},
    {"inferd_request_download_failures_total",
     "Inputs that could not be read from the object store (SageMaker RequestDownloadFailures)."},
    {"inferd_response_upload_failures_total",
     "Responses that could not be written to the object store (SageMaker "
     "ResponseUploadFailures)."},
    {"inferd_notification_failures_total",
     "Failed notification publishes, retried (SageMaker NotificationFailures)."},
    {"inferd_invocation_4xx_errors_total",
     "Model answers with a 4xx status (SageMaker Invocation4XXErrors)."},
    {"inferd_invocation_5xx_errors_total",
     "Model answers with a 5xx status (SageMaker Invocation5XXErrors)."},
};

constexpr Family kSummaries[kSummaryCount] = {
    {"inferd_time_in_backlog_milliseconds",
     "Time invocations waited in the queue before processing (SageMaker TimeInBacklog)."},
    {"inferd_total_processing_time_milliseconds",
     "From acceptance to the end of processing, notification included (SageMaker "
     "TotalProcessingTime)."},
    {"inferd_model_latency_microseconds",
     "Container round trip as seen by inferd (SageMaker ModelLatency)."},
};

std::string Escape(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Number(double v) { return fmt::format("{}", v); }

}  // namespace

void Metrics::Add(Counter counter, const std::string& endpoint, const std::string& variant,
                  int64_t n) {
  std::lock_guard lock(mu_);
  series_[{endpoint, variant}].counters[static_cast<int>(counter)] += n;
}

void Metrics::Observe(Summary summary, const std::string& endpoint, const std::string& variant,
                      double value) {
  std::lock_guard lock(mu_);
  Series& s = series_[{endpoint, variant}];
  s.sums[static_cast<int>(summary)] += value;
  s.counts[static_cast<int>(summary)] += 1;
}

int64_t Metrics::Get(Counter counter, const std::string& endpoint,
                     const std::string& variant) const {
  std::lock_guard lock(mu_);
  auto it = series_.find({endpoint, variant});
  return it == series_.end() ? 0 : it->second.counters[static_cast<int>(counter)];
}

std::pair<double, int64_t> Metrics::Get(Summary summary, const std::string& endpoint,
                                        const std::string& variant) const {
  std::lock_guard lock(mu_);
  auto it = series_.find({endpoint, variant});
  if (it == series_.end()) return {0, 0};
  return {it->second.sums[static_cast<int>(summary)], it->second.counts[static_cast<int>(summary)]};
}

std::string Metrics::Render(const std::vector<EndpointGauges>& gauges) const {
  std::string out;
  auto gauge = [&](const char* name, const char* help, auto value_of) {
    out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n", name, help, name);
    for (const EndpointGauges& g : gauges) {
      out += fmt::format("{}{{endpoint=\"{}\"}} {}\n", name, Escape(g.endpoint), value_of(g));
    }
  };
  gauge("inferd_approximate_backlog_size",
        "Invocations queued or in processing (SageMaker ApproximateBacklogSize).",
        [](const EndpointGauges& g) { return Number(static_cast<double>(g.backlog)); });
  gauge("inferd_approximate_backlog_size_per_instance",
        "Backlog divided by the endpoint's healthy instances; the whole backlog with none "
        "(SageMaker ApproximateBacklogSizePerInstance).",
        [](const EndpointGauges& g) {
          return Number(static_cast<double>(g.backlog) / (g.instances > 0 ? g.instances : 1));
        });
  gauge("inferd_approximate_age_of_oldest_request_seconds",
        "Age of the oldest queued invocation (SageMaker ApproximateAgeOfOldestRequest).",
        [](const EndpointGauges& g) { return Number(g.oldest_age_seconds); });
  gauge("inferd_has_backlog_without_capacity",
        "1 when invocations are queued and the endpoint has no healthy instance "
        "(SageMaker HasBacklogWithoutCapacity).",
        [](const EndpointGauges& g) {
          return std::string(g.queued > 0 && g.instances == 0 ? "1" : "0");
        });

  std::lock_guard lock(mu_);
  auto labels = [](const std::pair<std::string, std::string>& key) {
    return fmt::format("endpoint=\"{}\",variant=\"{}\"", Escape(key.first), Escape(key.second));
  };
  for (int c = 0; c < kCounterCount; ++c) {
    out += fmt::format("# HELP {} {}\n# TYPE {} counter\n", kCounters[c].name, kCounters[c].help,
                       kCounters[c].name);
    for (const auto& [key, s] : series_) {
      out += fmt::format("{}{{{}}} {}\n", kCounters[c].name, labels(key), s.counters[c]);
    }
  }
  for (int m = 0; m < kSummaryCount; ++m) {
    out += fmt::format("# HELP {} {}\n# TYPE {} summary\n", kSummaries[m].name, kSummaries[m].help,
                       kSummaries[m].name);
    for (const auto& [key, s] : series_) {
      if (s.counts[m] == 0) continue;
      out += fmt::format("{}_sum{{{}}} {}\n", kSummaries[m].name, labels(key), Number(s.sums[m]));
      out += fmt::format("{}_count{{{}}} {}\n", kSummaries[m].name, labels(key), s.counts[m]);
    }
  }
  return out;
}

}  // namespace inferd::dispatch
