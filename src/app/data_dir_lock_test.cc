#include "app/data_dir_lock.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "common/testing/test_support.h"

namespace inferd::app {
namespace {

TEST(DataDirLock, RefusesASecondHolderAndNamesTheFirst) {
  test_support::TempDir dir;
  {
    auto first = DataDirLock::Acquire(dir.path());
    ASSERT_TRUE(first.ok()) << first.error().message;
    auto second = DataDirLock::Acquire(dir.path());
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.error().code, Errc::kInvalidState);
    EXPECT_NE(second.error().message.find("is in use by another inferd (pid " +
                                          std::to_string(::getpid()) + ")"),
              std::string::npos)
        << second.error().message;
  }
  // Released with its holder.
  EXPECT_TRUE(DataDirLock::Acquire(dir.path()).ok());
}

TEST(DataDirLock, AKilledHolderLeavesItFree) {
  test_support::TempDir dir;
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto held = DataDirLock::Acquire(dir.path());
    const char c = held.ok() ? 'y' : 'n';
    if (::write(ready[1], &c, 1) != 1) _exit(2);
    for (;;) ::pause();
  }
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, 'y');
  auto refused = DataDirLock::Acquire(dir.path());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("(pid " + std::to_string(pid) + ")"), std::string::npos)
      << refused.error().message;
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ::close(ready[0]);
  ::close(ready[1]);
  EXPECT_TRUE(DataDirLock::Acquire(dir.path()).ok());
}

}  // namespace
}  // namespace inferd::app
