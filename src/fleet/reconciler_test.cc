// The reconciler against a real CatalogStore, FilesystemStore and inferd-echo processes.
#include "fleet/reconciler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <boost/json.hpp>
#include <thread>

#include "common/clock.h"
#include "fleet/instance.h"
#include "fleet/reconciler_fixture.h"
#include "fleet/test_util.h"
#include "store/filesystem_store.h"
#include "store/store_test_util.h"

namespace inferd::fleet {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using testing::EchoBin;
using ::testing::HasSubstr;
using testing::kRegion;
using testing::ReconcilerTest;
using testing::WaitFor;

TEST_F(ReconcilerTest, EndpointGoesInServiceAndDeleteStopsIt) {
  StartReconciler(Options());
  CreateEndpoint("E1", "inferd-echo", "s3://models/echo.tar.gz", 2);
  ASSERT_TRUE(WaitStatus("E1", "InService")) << Status("E1");
  json::object d = Describe("E1");
  const auto& v = d.at("ProductionVariants").at(0).as_object();
  EXPECT_EQ(v.at("CurrentInstanceCount").to_number<int>(), 2);
  EXPECT_EQ(v.at("DeployedImages").at(0).at("ResolvedImage").as_string(), EchoBin().string());
  ASSERT_TRUE(WaitHealthy("e1", 2));
  auto instances = reconciler_->HealthyInstances(kRegion, "E1");
  EXPECT_EQ(instances[0].variant, "v1");
  EXPECT_EQ(instances[0].host, "127.0.0.1");
  EXPECT_TRUE(PingOnce(instances[0].port, 2000ms));
  // The artifact was fetched once and both instances read the same extracted copy.
  json::object env0 = AskEcho(instances[0].port, "X-Echo-Env");
  json::object env1 = AskEcho(instances[1].port, "X-Echo-Env");
  ASSERT_TRUE(env0.contains("SM_MODEL_DIR") && env1.contains("SM_MODEL_DIR"));
  EXPECT_EQ(env0.at("SM_MODEL_DIR"), env1.at("SM_MODEL_DIR"));
  EXPECT_THAT(std::string(env0.at("SM_MODEL_DIR").as_string()),
              HasSubstr((tmp_.path() / "data" / "models").string()));

  ASSERT_TRUE(catalog_->DeleteEndpoint(kRegion, json::object{{"EndpointName", "E1"}}).ok());
  reconciler_->Wake();
  ASSERT_TRUE(WaitFor([&] { return Describe("E1").empty(); }));
  EXPECT_TRUE(reconciler_->HealthyInstances(kRegion, "E1").empty());
  EXPECT_FALSE(PingOnce(instances[0].port, 500ms));
  EXPECT_FALSE(PingOnce(instances[1].port, 500ms));
}

TEST_F(ReconcilerTest, FailingPingFailsTheEndpoint) {
  FleetOptions o = Options();
  o.startup_timeout_override = 1000ms;
  StartReconciler(o);
  CreateEndpoint("E1", "inferd-echo", "s3://models/echo.tar.gz", 1, R"({"ECHO_FAIL_PING":"1"})");
  ASSERT_TRUE(WaitStatus("E1", "Failed")) << Status("E1");
  EXPECT_EQ(Describe("E1").at("FailureReason").as_string(), "/ping did not pass within 1 s");
}

TEST_F(ReconcilerTest, MissingArtifactAndUnknownImageFailWithReasons) {
  StartReconciler(Options());
  CreateEndpoint("E1", "inferd-echo", "s3://models/missing.tar.gz", 1);
  CreateEndpoint("E2", "registry.example/pytorch:2", "s3://models/echo.tar.gz", 1);
  ASSERT_TRUE(WaitStatus("E1", "Failed"));
  EXPECT_THAT(std::string(Describe("E1").at("FailureReason").as_string()),
              HasSubstr("model artifact s3://models/missing.tar.gz could not be fetched: "));
  ASSERT_TRUE(WaitStatus("E2", "Failed"));
  EXPECT_EQ(Describe("E2").at("FailureReason").as_string(),
            "no runtime for image registry.example/pytorch:2 (configure one in image_runtimes)");
}

TEST_F(ReconcilerTest, ServerExitFailsTheEndpointWithItsLog) {
  FleetOptions o = Options();
  o.image_runtimes = {{"inferd-echo", "/bin/false"}};
  StartReconciler(o);
  CreateEndpoint("E1", "inferd-echo", "s3://models/echo.tar.gz", 1);
  ASSERT_TRUE(WaitStatus("E1", "Failed"));
  EXPECT_THAT(std::string(Describe("E1").at("FailureReason").as_string()),
              HasSubstr("the model server exited with code 1"));
  // The reason ends with the server's last log lines: here, why it refused to start.
  StartReconciler(Options());
  CreateEndpoint("E2", "inferd-echo", "s3://models/echo.tar.gz", 1, R"({"ECHO_STATUS":"999"})");
  ASSERT_TRUE(WaitStatus("E2", "Failed"));
  std::string reason(Describe("E2").at("FailureReason").as_string());
  EXPECT_THAT(reason, HasSubstr("the model server exited with code 1"));
  EXPECT_THAT(reason, HasSubstr("ECHO_STATUS"));
}

TEST_F(ReconcilerTest, AnInstanceThatStopsAnsweringIsReplaced) {
  FleetOptions o = Options();
  o.ping_timeout = 300ms;
  o.stop_grace = 500ms;  // a stopped process ignores SIGTERM: SIGKILL after the grace period
  StartReconciler(o);
  CreateEndpoint("E1", "inferd-echo", "s3://models/echo.tar.gz", 1);
  ASSERT_TRUE(WaitStatus("E1", "InService"));
  ASSERT_TRUE(WaitHealthy("E1", 1));
  InstanceInfo first = reconciler_->HealthyInstances(kRegion, "E1")[0];
  ASSERT_EQ(::kill(first.pid, SIGSTOP), 0);  // running, but no longer answering /ping
  size_t most = 0;
  ASSERT_TRUE(WaitFor([&] {
    auto h = reconciler_->HealthyInstances(kRegion, "E1");
    most = std::max(most, h.size());
    return h.size() == 1 && h[0].port != first.port;
  }));
  EXPECT_EQ(most, 1u);                 // never more than the desired count
  EXPECT_NE(::kill(first.pid, 0), 0);  // the silent one was stopped
  EXPECT_EQ(Status("E1"), "InService");
}

TEST_F(ReconcilerTest, KilledInstanceIsReplacedAndRestartBringsFleetBack) {
  StartReconciler(Options());
  CreateEndpoint("E1", "inferd-echo", "s3://models/echo.tar.gz", 1);
  ASSERT_TRUE(WaitStatus("E1", "InService"));
  ASSERT_TRUE(WaitHealthy("E1", 1));
  uint16_t first = reconciler_->HealthyInstances(kRegion, "E1")[0].port;
  ASSERT_EQ(::kill(reconciler_->HealthyInstances(kRegion, "E1")[0].pid, SIGKILL), 0);
  ASSERT_TRUE(WaitFor([&] {
    auto h = reconciler_->HealthyInstances(kRegion, "E1");
    return h.size() == 1 && h[0].port != first;
  }));
  EXPECT_EQ(Status("E1"), "InService");

  // An inferd restart: a new reconciler brings the InService endpoint's instances back.
  reconciler_->Stop();
  EXPECT_TRUE(reconciler_->HealthyInstances(kRegion, "E1").empty());
  StartReconciler(Options());
  ASSERT_TRUE(WaitHealthy("E1", 1));
}

TEST_F(ReconcilerTest, WithoutHostingEndpointsStayCreatingAndDeletesComplete) {
  FleetOptions o = Options();
  o.host_models = false;
  StartReconciler(o);
  CreateEndpoint("E1", "inferd-echo", "s3://models/echo.tar.gz", 1);
  reconciler_->Wake();
  std::this_thread::sleep_for(300ms);  // several passes: asserting that nothing happens
  EXPECT_EQ(Status("E1"), "Creating");
  ASSERT_TRUE(catalog_->DeleteEndpoint(kRegion, json::object{{"EndpointName", "E1"}}).ok());
  ASSERT_TRUE(WaitFor([&] { return Describe("E1").empty(); }));
}

TEST_F(ReconcilerTest, CapacityChangesStartAndStopInstances) {
  StartReconciler(Options());
  CreateEndpoint("E1", "inferd-echo", "s3://models/echo.tar.gz", 1);
  ASSERT_TRUE(WaitStatus("E1", "InService"));
  ASSERT_NO_FATAL_FAILURE(Scale("E1", 3));
  EXPECT_EQ(
      Describe("E1").at("ProductionVariants").at(0).at("CurrentInstanceCount").to_number<int>(), 3);
  EXPECT_EQ(reconciler_->HealthyInstances(kRegion, "E1").size(), 3u);
  ASSERT_NO_FATAL_FAILURE(Scale("E1", 1));
  EXPECT_EQ(reconciler_->HealthyInstances(kRegion, "E1").size(), 1u);
}

TEST_F(ReconcilerTest, UpdateEndpointIsBlueGreenAndAFailedUpdateKeepsTheOldFleet) {
  StartReconciler(Options());
  CreateEndpoint("E1", "inferd-echo", "s3://models/echo.tar.gz", 1);
  ASSERT_TRUE(WaitStatus("E1", "InService"));
  ASSERT_TRUE(WaitHealthy("E1", 1));
  uint16_t old_port = reconciler_->HealthyInstances(kRegion, "E1")[0].port;

  // A new configuration with 2 instances: the new fleet replaces the old one.
  CreateEndpoint("E2", "inferd-echo", "s3://models/echo.tar.gz", 2);
  auto up = catalog_->UpdateEndpoint(
      kRegion, json::object{{"EndpointName", "E1"}, {"EndpointConfigName", "E2"}});
  ASSERT_TRUE(up.ok()) << up.error().message;
  ASSERT_TRUE(WaitStatus("E1", "InService"));
  json::object d = Describe("E1");
  EXPECT_EQ(d.at("EndpointConfigName").as_string(), "E2");
  EXPECT_FALSE(d.contains("PendingDeploymentSummary"));
  EXPECT_EQ(d.at("ProductionVariants").at(0).at("CurrentInstanceCount").to_number<int>(), 2);
  ASSERT_TRUE(WaitHealthy("E1", 2));
  // The old fleet drains, then stops.
  EXPECT_TRUE(WaitFor([&] { return !PingOnce(old_port, 500ms); }));

  // A configuration whose image has no runtime: back to InService, old fleet still serving.
  CreateEndpoint("E3", "registry.example/pytorch:2", "s3://models/echo.tar.gz", 1);
  up = catalog_->UpdateEndpoint(kRegion,
                                json::object{{"EndpointName", "E1"}, {"EndpointConfigName", "E3"}});
  ASSERT_TRUE(up.ok());
  ASSERT_TRUE(WaitFor([&] {
    reconciler_->Wake();
    return Describe("E1").contains("FailureReason");
  }));
  d = Describe("E1");
  EXPECT_EQ(d.at("EndpointStatus").as_string(), "InService");
  EXPECT_EQ(d.at("EndpointConfigName").as_string(), "E2");
  EXPECT_THAT(std::string(d.at("FailureReason").as_string()), HasSubstr("no runtime for image"));
  EXPECT_EQ(reconciler_->HealthyInstances(kRegion, "E1").size(), 2u);
}

// The ContainerDefinition's Environment reaches the model server verbatim, with the contract's own
// variables (the seed's TorchServe knobs are what users set for long async work).
TEST_F(ReconcilerTest, EnvironmentReachesTheModelServer) {
  StartReconciler(Options());
  CreateEndpoint("Env1", "inferd-echo", "s3://models/echo.tar.gz", 1,
                 R"({"TS_MAX_REQUEST_SIZE":"100000000","TS_MAX_RESPONSE_SIZE":"100000000",
                     "TS_DEFAULT_RESPONSE_TIMEOUT":"1000","WITH SPACE":"a b"})");
  ASSERT_TRUE(WaitStatus("Env1", "InService")) << Status("Env1");
  auto instances = reconciler_->HealthyInstances(kRegion, "Env1");
  ASSERT_EQ(instances.size(), 1u);
  json::object env = AskEcho(instances[0].port, "X-Echo-Env");
  ASSERT_FALSE(env.empty());
  EXPECT_EQ(env.at("TS_MAX_REQUEST_SIZE").as_string(), "100000000");
  EXPECT_EQ(env.at("TS_MAX_RESPONSE_SIZE").as_string(), "100000000");
  EXPECT_EQ(env.at("TS_DEFAULT_RESPONSE_TIMEOUT").as_string(), "1000");
  EXPECT_EQ(env.at("WITH SPACE").as_string(), "a b");
  EXPECT_EQ(env.at("SAGEMAKER_BIND_TO_PORT").as_string(), std::to_string(instances[0].port));
  EXPECT_TRUE(env.contains("SM_MODEL_DIR"));
}

}  // namespace
}  // namespace inferd::fleet
