#include "fleet/instance.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "fleet/options.h"
#include "fleet/test_util.h"

namespace inferd::fleet {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

std::filesystem::path EchoBin() {
  if (const char* env = std::getenv("INFERD_ECHO_BIN")) return env;
  return INFERD_ECHO_BIN;
}

// Polls `cond` every 20 ms for up to `limit`.
template <typename F>
bool WaitFor(F cond, std::chrono::milliseconds limit = 10s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return cond();
}

TEST(ImageRuntimeTest, DefaultTableMatchesSageMakerAndEchoImages) {
  FleetOptions o;
  o.data_dir = "/d";
  o.bin_dir = "/opt/inferd/bin";
  auto xgb =
      ResolveImage(o, "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1");
  ASSERT_TRUE(xgb.ok());
  EXPECT_EQ(*xgb, "/opt/inferd/bin/inferd-xgboost");
  EXPECT_EQ(*ResolveImage(o, "registry.example/xgboost:1"), "/opt/inferd/bin/inferd-xgboost");
  EXPECT_EQ(*ResolveImage(o, "registry.example/xgboost:latest"), "/opt/inferd/bin/inferd-xgboost");
  EXPECT_EQ(*ResolveImage(o, "inferd-echo"), "/opt/inferd/bin/inferd-echo");
  EXPECT_EQ(*ResolveImage(o, "localhost:5000/inferd-echo:2"), "/opt/inferd/bin/inferd-echo");
  auto none = ResolveImage(o, "registry.example/pytorch:2");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().message,
            "no runtime for image registry.example/pytorch:2 (configure one in image_runtimes)");
  o.image_runtimes = {{"registry.example/*", "/usr/local/bin/server"}};
  EXPECT_EQ(*ResolveImage(o, "registry.example/pytorch:2"), "/usr/local/bin/server");
}

TEST(ImageRuntimeTest, ValidateRejectsBadOptions) {
  FleetOptions o;
  EXPECT_FALSE(o.Validate().ok());
  o.data_dir = "/d";
  EXPECT_TRUE(o.Validate().ok());
  o.image_runtimes.push_back({"", "x"});
  EXPECT_FALSE(o.Validate().ok());
}

TEST(InstanceTest, StartsEchoPingsAndStopsTheProcessGroup) {
  testing::TempDir tmp;
  InstanceSpec spec{EchoBin(), tmp.path(), tmp.path() / "i1", {{"ECHO_GREETING", "hi"}}};
  auto inst = Instance::Start(spec);
  ASSERT_TRUE(inst.ok()) << inst.error().message;
  Instance& i = **inst;
  EXPECT_EQ(i.state(), InstanceState::kStarting);
  ASSERT_TRUE(WaitFor([&] { return i.Ping(2000ms); }));
  EXPECT_EQ(i.state(), InstanceState::kHealthy);
  pid_t pgid = i.pid();
  i.Stop(5000ms);
  EXPECT_EQ(i.state(), InstanceState::kStopped);
  EXPECT_EQ(i.exit_code(), 0);     // SIGTERM: graceful exit
  EXPECT_NE(::kill(-pgid, 0), 0);  // the process group is gone
  EXPECT_THAT(i.LogTail(10), HasSubstr("listening on 127.0.0.1:"));
}

TEST(InstanceTest, FailingPingAndExitAreObserved) {
  testing::TempDir tmp;
  auto inst = Instance::Start({EchoBin(), tmp.path(), tmp.path() / "i", {{"ECHO_FAIL_PING", "1"}}});
  ASSERT_TRUE(inst.ok());
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE((*inst)->Ping(2000ms));
  EXPECT_EQ((*inst)->state(), InstanceState::kStarting);
  ::kill((*inst)->pid(), SIGKILL);
  ASSERT_TRUE(WaitFor([&] { return !(*inst)->Poll(); }));
  EXPECT_EQ((*inst)->state(), InstanceState::kExited);
  EXPECT_EQ((*inst)->exit_code(), 128 + SIGKILL);

  auto missing = Instance::Start({tmp.path() / "no-such-server", tmp.path(), tmp.path() / "m", {}});
  ASSERT_TRUE(missing.ok());
  ASSERT_TRUE(WaitFor([&] { return !(*missing)->Poll(); }));
  EXPECT_EQ((*missing)->exit_code(), 127);
  EXPECT_THAT((*missing)->LogTail(10), HasSubstr("cannot execute"));
}

}  // namespace
}  // namespace inferd::fleet
