#include "fleet/instance.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <boost/json.hpp>

#include "fleet/options.h"
#include "fleet/process_runtime.h"
#include "fleet/test_util.h"

namespace inferd::fleet {
namespace {

using namespace std::chrono_literals;
using testing::EchoBin;
using ::testing::HasSubstr;
using testing::WaitFor;

// inferd-echo as a process instance working in <tmp>/i, once it passed /ping (else null, with
// the test failed).
std::unique_ptr<Instance> HealthyEcho(const testing::TempDir& tmp) {
  ProcessRuntime runtime;
  auto inst =
      runtime.Start({.command = EchoBin(), .model_dir = tmp.path(), .work_dir = tmp.path() / "i"});
  EXPECT_TRUE(inst.ok()) << inst.error().message;
  if (!inst.ok()) return nullptr;
  EXPECT_TRUE(WaitFor([&] { return (*inst)->Ping(2000ms); })) << (*inst)->LogTail(10);
  return (*inst)->state() == InstanceState::kHealthy ? std::move(*inst) : nullptr;
}

TEST(ImageRuntimeTest, DefaultTableMatchesSageMakerAndEchoImages) {
  FleetOptions o;
  o.data_dir = "/d";
  o.bin_dir = "/opt/inferd/bin";
  auto command = [&](const std::string& image) {
    auto r = ResolveImage(o, image);
    EXPECT_TRUE(r.ok()) << image;
    EXPECT_EQ(r.ok() ? r->runtime : RuntimeKind::kDocker, RuntimeKind::kProcess) << image;
    return r.ok() ? r->command : std::filesystem::path();
  };
  EXPECT_EQ(command("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"),
            "/opt/inferd/bin/inferd-xgboost");
  EXPECT_EQ(command("registry.example/xgboost:1"), "/opt/inferd/bin/inferd-xgboost");
  EXPECT_EQ(command("registry.example/xgboost:latest"), "/opt/inferd/bin/inferd-xgboost");
  EXPECT_EQ(command("inferd-echo"), "/opt/inferd/bin/inferd-echo");
  EXPECT_EQ(command("localhost:5000/inferd-echo:2"), "/opt/inferd/bin/inferd-echo");
  auto none = ResolveImage(o, "registry.example/pytorch:2");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().message,
            "no runtime for image registry.example/pytorch:2 (configure one in image_runtimes)");
  o.image_runtimes = {{"registry.example/*", "/usr/local/bin/server"}};
  EXPECT_EQ(command("registry.example/pytorch:2"), "/usr/local/bin/server");
  o.image_runtimes = {{"registry.example/*", "", RuntimeKind::kDocker}};
  auto docker = ResolveImage(o, "registry.example/pytorch:2");
  ASSERT_TRUE(docker.ok());
  EXPECT_EQ(docker->runtime, RuntimeKind::kDocker);
}

TEST(ImageRuntimeTest, ConfigRowsNameACommandOrTheDockerRuntime) {
  auto rows = ImageRuntimesFromJson(boost::json::parse(R"([
      {"pattern": "a/*", "command": "/bin/a"},
      {"pattern": "b/*", "runtime": "docker"},
      {"pattern": "c/*", "runtime": "process", "command": "c-server"}])"));
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[0].runtime, RuntimeKind::kProcess);
  EXPECT_EQ((*rows)[0].command, "/bin/a");
  EXPECT_EQ((*rows)[1].runtime, RuntimeKind::kDocker);
  EXPECT_EQ((*rows)[2].runtime, RuntimeKind::kProcess);
  EXPECT_EQ((*rows)[2].command, "c-server");
  for (const char* bad :
       {R"({"pattern": "x"})", R"([{"pattern": "x"}])", R"([{"pattern": "", "command": "/x"}])",
        R"([{"pattern": "x", "runtime": "docker", "command": "/x"}])",
        R"([{"pattern": "x", "runtime": "kubernetes"}])",
        R"([{"pattern": "x", "command": "/x", "extra": 1}])",
        R"([{"pattern": "x", "command": 3}])"}) {
    auto r = ImageRuntimesFromJson(boost::json::parse(bad));
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, Errc::kValidation);
    }
  }
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
  ProcessRuntime runtime;
  InstanceSpec spec{.command = EchoBin(),
                    .model_dir = tmp.path(),
                    .work_dir = tmp.path() / "i1",
                    .environment = {{"ECHO_GREETING", "hi"}},
                    .instance_type = "ml.m5.xlarge",
                    .resources = ResourcesFor("ml.m5.xlarge", {})};
  auto inst = runtime.Start(spec);
  ASSERT_TRUE(inst.ok()) << inst.error().message;
  Instance& i = **inst;
  EXPECT_EQ(i.state(), InstanceState::kStarting);
  ASSERT_TRUE(WaitFor([&] { return i.Ping(2000ms); }));
  EXPECT_EQ(i.state(), InstanceState::kHealthy);
  pid_t pgid = i.pid();
  // Its own working directory (where its log is).
  EXPECT_EQ(std::filesystem::read_symlink("/proc/" + std::to_string(pgid) + "/cwd"),
            tmp.path() / "i1");
  i.Stop(5000ms);
  EXPECT_EQ(i.state(), InstanceState::kStopped);
  EXPECT_EQ(i.exit_code(), 0);     // SIGTERM: graceful exit
  EXPECT_NE(::kill(-pgid, 0), 0);  // the process group is gone
  EXPECT_THAT(i.LogTail(10), HasSubstr("listening on 127.0.0.1:"));
  // The process runtime reports the instance type's resources in the log (not enforced).
  EXPECT_THAT(i.LogTail(10),
              HasSubstr("instance type ml.m5.xlarge: 4 vCPUs, 16384 MiB memory, 0 GPUs"));
}

TEST(InstanceTest, FailingPingAndExitAreObserved) {
  testing::TempDir tmp;
  ProcessRuntime runtime;
  auto inst = runtime.Start({.command = EchoBin(),
                             .model_dir = tmp.path(),
                             .work_dir = tmp.path() / "i",
                             .environment = {{"ECHO_FAIL_PING", "1"}}});
  ASSERT_TRUE(inst.ok());
  // Listening, so the ping fails because the server says so, not because it is not up yet.
  ASSERT_TRUE(WaitFor([&] {
    return (*inst)->LogTail(10).find("listening on") != std::string::npos;
  })) << (*inst)->LogTail(10);
  EXPECT_FALSE((*inst)->Ping(2000ms));
  EXPECT_EQ((*inst)->state(), InstanceState::kStarting);
  ::kill((*inst)->pid(), SIGKILL);
  ASSERT_TRUE(WaitFor([&] { return !(*inst)->Poll(); }));
  EXPECT_EQ((*inst)->state(), InstanceState::kExited);
  EXPECT_EQ((*inst)->exit_code(), 128 + SIGKILL);

  auto missing = runtime.Start({.command = tmp.path() / "no-such-server",
                                .model_dir = tmp.path(),
                                .work_dir = tmp.path() / "m"});
  ASSERT_TRUE(missing.ok());
  ASSERT_TRUE(WaitFor([&] { return !(*missing)->Poll(); }));
  EXPECT_EQ((*missing)->exit_code(), 127);
  EXPECT_THAT((*missing)->LogTail(10), HasSubstr("cannot execute"));
}

TEST(InstanceTest, AServerIgnoringSigtermIsKilledAfterTheGracePeriod) {
  testing::TempDir tmp;
  std::unique_ptr<Instance> inst = HealthyEcho(tmp);
  ASSERT_TRUE(inst);
  ASSERT_EQ(::kill(inst->pid(), SIGSTOP), 0);  // SIGTERM now stays pending
  auto started = std::chrono::steady_clock::now();
  inst->Stop(300ms);
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(inst->state(), InstanceState::kStopped);
  EXPECT_EQ(inst->exit_code(), 128 + SIGKILL);
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 5s);
}

TEST(InstanceTest, ModelServerInheritsNoDescriptorOfInferd) {
  // inferd's sockets are not O_CLOEXEC (Asio): a model server must still hold none of them, or a
  // client connection inferd closed would stay open in the child.
  int leaked = ::socket(AF_INET, SOCK_STREAM, 0);  // no SOCK_CLOEXEC, like Asio's
  ASSERT_GE(leaked, 3);
  struct stat leaked_stat {};
  ASSERT_EQ(::fstat(leaked, &leaked_stat), 0);
  testing::TempDir tmp;
  std::unique_ptr<Instance> inst = HealthyEcho(tmp);
  ASSERT_TRUE(inst);
  std::vector<std::string> sockets;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(inst->pid()) + "/fd")) {
    struct stat st {};
    if (::stat(entry.path().c_str(), &st) == 0 && st.st_ino == leaked_stat.st_ino &&
        st.st_dev == leaked_stat.st_dev) {
      sockets.push_back(entry.path().filename().string());
    }
  }
  EXPECT_THAT(sockets, ::testing::IsEmpty()) << "the model server holds inferd's socket";
  inst->Stop(5000ms);
  ::close(leaked);
}

}  // namespace
}  // namespace inferd::fleet
