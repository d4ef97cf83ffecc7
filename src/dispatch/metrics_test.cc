#include "dispatch/metrics.h"

#include <gtest/gtest.h>

namespace inferd::dispatch {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST(MetricsTest, RendersPrometheusTextWithSageMakerNames) {
  Metrics m;
  m.Add(Counter::kInvocationsProcessed, "ep", "AllTraffic", 3);
  m.Add(Counter::kInvocationFailures, "ep", "AllTraffic");
  m.Add(Counter::kExpiredRequests, "ep", "");
  m.Add(Counter::kInvocation5xxErrors, "ep", "AllTraffic");
  m.Observe(Summary::kModelLatency, "ep", "AllTraffic", 1500);
  m.Observe(Summary::kModelLatency, "ep", "AllTraffic", 500);
  EXPECT_EQ(m.Get(Counter::kInvocationsProcessed, "ep", "AllTraffic"), 3);
  EXPECT_EQ(m.Get(Summary::kModelLatency, "ep", "AllTraffic"),
            (std::pair<double, int64_t>{2000, 2}));

  std::string text = m.Render({{"ep", 7, 2, 12.5, 5}, {"idle", 0, 0, 0, 0}, {"cold", 3, 0, 4, 3}});
  EXPECT_TRUE(Has(text, "# TYPE inferd_approximate_backlog_size gauge"));
  EXPECT_TRUE(Has(text, "inferd_approximate_backlog_size{endpoint=\"ep\"} 7"));
  EXPECT_TRUE(Has(text, "inferd_approximate_backlog_size_per_instance{endpoint=\"ep\"} 3.5"));
  EXPECT_TRUE(Has(text, "inferd_approximate_backlog_size_per_instance{endpoint=\"cold\"} 3"));
  EXPECT_TRUE(Has(text, "inferd_approximate_age_of_oldest_request_seconds{endpoint=\"ep\"} 12.5"));
  EXPECT_TRUE(Has(text, "inferd_has_backlog_without_capacity{endpoint=\"ep\"} 0"));
  EXPECT_TRUE(Has(text, "inferd_has_backlog_without_capacity{endpoint=\"idle\"} 0"));
  EXPECT_TRUE(Has(text, "inferd_has_backlog_without_capacity{endpoint=\"cold\"} 1"));
  EXPECT_TRUE(Has(text, "# TYPE inferd_invocations_processed_total counter"));
  EXPECT_TRUE(
      Has(text, "inferd_invocations_processed_total{endpoint=\"ep\",variant=\"AllTraffic\"} 3"));
  EXPECT_TRUE(Has(text, "inferd_expired_requests_total{endpoint=\"ep\",variant=\"\"} 1"));
  EXPECT_TRUE(
      Has(text, "inferd_invocation_5xx_errors_total{endpoint=\"ep\",variant=\"AllTraffic\"} 1"));
  EXPECT_TRUE(Has(text, "# TYPE inferd_model_latency_microseconds summary"));
  EXPECT_TRUE(Has(
      text, "inferd_model_latency_microseconds_sum{endpoint=\"ep\",variant=\"AllTraffic\"} 2000"));
  EXPECT_TRUE(Has(
      text, "inferd_model_latency_microseconds_count{endpoint=\"ep\",variant=\"AllTraffic\"} 2"));
  for (const char* family :
       {"inferd_invocation_failures_total", "inferd_request_download_failures_total",
        "inferd_response_upload_failures_total", "inferd_notification_failures_total",
        "inferd_invocation_4xx_errors_total", "inferd_time_in_backlog_milliseconds",
        "inferd_total_processing_time_milliseconds"}) {
    EXPECT_NE(text.find(std::string("# HELP ") + family + " "), std::string::npos) << family;
  }
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  Metrics m;
  m.Add(Counter::kInvocationFailures, "a\"b\\c\nd", "v");
  EXPECT_NE(m.Render({}).find(R"(endpoint="a\"b\\c\nd")"), std::string::npos);
}

}  // namespace
}  // namespace inferd::dispatch
