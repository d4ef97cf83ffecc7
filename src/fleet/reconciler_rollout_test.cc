// The reconciler during rollouts (always a healthy instance, scale to 0 and back) and with the
// newer ways to name model data and runtimes (ModelDataSource, download timeout, docker).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <set>
#include <thread>

#include "fleet/reconciler_fixture.h"

namespace inferd::fleet {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using testing::EchoBin;
using ::testing::HasSubstr;
using testing::kRegion;
using testing::ReconcilerTest;
using testing::WaitFor;

// Polls the endpoint's published instances and their /ping from another thread, as a dispatcher
// would, counting polls that found no instance answering.
class HealthPoller {
 public:
  HealthPoller(Reconciler& r, std::string endpoint)
      : thread_([this, &r, endpoint] {
          while (!stop_) {
            bool ok = false;
            for (const auto& i : r.HealthyInstances(kRegion, endpoint)) {
              if (PingOnce(i.port, 1000ms)) {
                ok = true;
                break;
              }
            }
            ++polls_;
            if (!ok) ++misses_;
            std::this_thread::sleep_for(5ms);
          }
        }) {}
  ~HealthPoller() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int polls() const { return polls_; }
  int misses() const { return misses_; }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> polls_{0};
  std::atomic<int> misses_{0};
  std::thread thread_;
};

int CurrentCount(const json::object& d) {
  return d.at("ProductionVariants").at(0).at("CurrentInstanceCount").to_number<int>();
}

TEST_F(ReconcilerTest, UpdatesNeverLeaveTheEndpointWithoutAHealthyInstance) {
  StartReconciler(Options());
  CreateEndpoint("E1", "inferd-echo", "s3://models/echo.tar.gz", 1);
  ASSERT_TRUE(WaitStatus("E1", "InService"));
  ASSERT_TRUE(WaitHealthy("E1", 1));
  std::set<uint16_t> ports;
  for (const auto& i : reconciler_->HealthyInstances(kRegion, "E1")) ports.insert(i.port);

  HealthPoller poller(*reconciler_, "E1");
  // Blue/green to a 2-instance configuration, then back to 1 instance, then capacity 1 → 2 → 1.
  CreateEndpoint("E2", "inferd-echo", "s3://models/echo.tar.gz", 2,
                 R"({"ECHO_STARTUP_DELAY_MS":"300"})");
  CreateEndpoint("E3", "inferd-echo", "s3://models/echo.tar.gz", 1);
  for (const char* config : {"E2", "E3"}) {
    ASSERT_TRUE(catalog_
                    ->UpdateEndpoint(kRegion, json::object{{"EndpointName", "E1"},
                                                           {"EndpointConfigName", config}})
                    .ok());
    ASSERT_TRUE(WaitFor([&] {
      reconciler_->Wake();
      auto d = Describe("E1");
      return d.at("EndpointStatus").as_string() == "InService" &&
             d.at("EndpointConfigName").as_string() == config;
    }));
  }
  for (int count : {2, 1}) {
    ASSERT_NO_FATAL_FAILURE(Scale("E1", count));
    EXPECT_EQ(CurrentCount(Describe("E1")), count);
  }
  std::this_thread::sleep_for(500ms);  // past the drain delay of the last retired instance
  poller.Stop();
  EXPECT_GT(poller.polls(), 50);
  EXPECT_EQ(poller.misses(), 0) << "polls with no healthy instance, of " << poller.polls();
  // The first fleet's instance was stopped once drained.
  for (uint16_t p : ports) EXPECT_FALSE(PingOnce(p, 500ms));
  EXPECT_EQ(reconciler_->HealthyInstances(kRegion, "E1").size(), 1u);
}

TEST_F(ReconcilerTest, ScalesToZeroAndBack) {
  StartReconciler(Options());
  CreateEndpoint("E1", "inferd-echo", "s3://models/echo.tar.gz", 1);
  ASSERT_TRUE(WaitStatus("E1", "InService"));
  ASSERT_TRUE(WaitHealthy("E1", 1));
  uint16_t port = reconciler_->HealthyInstances(kRegion, "E1")[0].port;
  ASSERT_NO_FATAL_FAILURE(Scale("E1", 0));
  json::object d = Describe("E1");
  EXPECT_EQ(CurrentCount(d), 0);
  EXPECT_EQ(d.at("ProductionVariants").at(0).at("DesiredInstanceCount").to_number<int>(), 0);
  EXPECT_TRUE(reconciler_->HealthyInstances(kRegion, "E1").empty());
  EXPECT_TRUE(WaitFor([&] { return !PingOnce(port, 500ms); }));  // stopped after draining
  ASSERT_NO_FATAL_FAILURE(Scale("E1", 1));
  EXPECT_EQ(CurrentCount(Describe("E1")), 1);
  ASSERT_EQ(reconciler_->HealthyInstances(kRegion, "E1").size(), 1u);
  EXPECT_TRUE(PingOnce(reconciler_->HealthyInstances(kRegion, "E1")[0].port, 1000ms));
}

TEST_F(ReconcilerTest, ModelDataSourcePrefixReachesTheServer) {
  for (const auto& [key, content] : {std::pair{"prefix/m1/xgboost-model", "weights"},
                                     std::pair{"prefix/m1/code/inference.py", "print(1)"}}) {
    store::testing::StringSource body(content);
    ASSERT_TRUE(objects_->Put("models", key, {}, body).ok());
  }
  StartReconciler(Options());
  Create(
      "P1",
      json::object{{"Image", "inferd-echo"},
                   {"ModelDataSource",
                    json::object{{"S3DataSource", json::object{{"S3Uri", "s3://models/prefix/m1/"},
                                                               {"S3DataType", "S3Prefix"},
                                                               {"CompressionType", "None"}}}}}},
      {}, 1);
  ASSERT_TRUE(WaitStatus("P1", "InService")) << Describe("P1");
  auto instances = reconciler_->HealthyInstances(kRegion, "P1");
  ASSERT_EQ(instances.size(), 1u);
  json::object model = AskEcho(instances[0].port, "X-Echo-Model");
  ASSERT_FALSE(model.empty());
  EXPECT_EQ(model.at("files"),
            (json::object{{"code/inference.py", "print(1)"}, {"xgboost-model", "weights"}}));
}

TEST_F(ReconcilerTest, ADownloadSlowerThanItsTimeoutFailsTheEndpoint) {
  for (const char* key : {"slow/a", "slow/b"}) {
    store::testing::StringSource body("0123456789abcdef");
    ASSERT_TRUE(objects_->Put("models", key, {}, body).ok());
  }
  testing::SlowStore slow(*objects_, [] { std::this_thread::sleep_for(150ms); });
  StartReconciler(Options(), &slow);
  Create("S1",
         json::object{{"Image", "inferd-echo"},
                      {"ModelDataSource",
                       json::object{{"S3DataSource", json::object{{"S3Uri", "s3://models/slow/"},
                                                                  {"S3DataType", "S3Prefix"},
                                                                  {"CompressionType", "None"}}}}}},
         {{"ModelDataDownloadTimeoutInSeconds", 1}}, 1);
  ASSERT_TRUE(WaitStatus("S1", "Failed"));
  EXPECT_EQ(Describe("S1").at("FailureReason").as_string(),
            "model artifact s3://models/slow/ was not downloaded within "
            "ModelDataDownloadTimeoutInSeconds (1 s)");
}

TEST_F(ReconcilerTest, DockerImagesNeedAnEngine) {
  FleetOptions o = Options();
  o.image_runtimes.push_back({"registry.example/*", "", RuntimeKind::kDocker});
  StartReconciler(o);
  Create("D1", json::object{{"Image", "registry.example/model:1"}}, {}, 1);
  ASSERT_TRUE(WaitStatus("D1", "Failed"));
  EXPECT_EQ(Describe("D1").at("FailureReason").as_string(),
            "image registry.example/model:1 maps to the docker runtime, but the docker runtime "
            "is not configured (set docker_host)");
  reconciler_->Stop();
  o.docker_socket = (tmp_.path() / "no-engine.sock").string();
  StartReconciler(o);
  Create("D2", json::object{{"Image", "registry.example/model:1"}}, {}, 1);
  ASSERT_TRUE(WaitStatus("D2", "Failed"));
  EXPECT_THAT(std::string(Describe("D2").at("FailureReason").as_string()),
              HasSubstr("image registry.example/model:1 is not available: cannot reach the "
                        "container engine at unix://"));
}

}  // namespace
}  // namespace inferd::fleet
