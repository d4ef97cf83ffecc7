// `inferd invocations`: the exit codes docs/api.md promises when inferd cannot be asked at all
// (the server's own answers, 0 and 1, are tested end to end in tests/e2e/test_async_pipeline.py).
#include "app/invocations_cli.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace inferd::app {
namespace {

// A loopback port nothing listens on (bound, then released).
int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

InvocationsOptions Get() {
  InvocationsOptions o;
  o.command = "get";
  o.endpoint = "ep";
  o.inference_id = "id-1";
  o.access_key_id = o.secret_access_key = "k";
  o.region = "us-east-1";
  return o;
}

TEST(InvocationsCli, ExitsTwoWhenInferdCannotBeAsked) {
  InvocationsOptions unreachable = Get();
  unreachable.endpoint_url = "http://127.0.0.1:" + std::to_string(ClosedPort());
  EXPECT_EQ(RunInvocations(unreachable), 2);

  InvocationsOptions bad_url = Get();
  bad_url.endpoint_url = "127.0.0.1:8600";  // no scheme
  EXPECT_EQ(RunInvocations(bad_url), 2);

  InvocationsOptions bad_output = Get();
  bad_output.output = "yaml";
  EXPECT_EQ(RunInvocations(bad_output), 2);
}

}  // namespace
}  // namespace inferd::app
