#include "http/message.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

namespace inferd::http {
namespace {

using std::chrono::system_clock;

TEST(EqualsIgnoreCaseTest, FoldsAsciiLettersOnly) {
  EXPECT_TRUE(EqualsIgnoreCase("Content-Length", "content-LENGTH"));
  EXPECT_TRUE(EqualsIgnoreCase("", ""));
  EXPECT_FALSE(EqualsIgnoreCase("Host", "Hosts"));
  EXPECT_FALSE(EqualsIgnoreCase("x-amz-date", "x_amz_date"));
  EXPECT_FALSE(EqualsIgnoreCase("[", "{"));        // '[' + 32 is '{': not letters
  EXPECT_FALSE(EqualsIgnoreCase("\xC9", "\xE9"));  // Latin-1 É/é: not folded (C locale)
  EXPECT_FALSE(EqualsIgnoreCase("@", "`"));
}

TEST(HeadersTest, CopiesAreIndependent) {
  Headers a;
  a.Add("Host", "example.com");
  a.Add("X-One", "1");
  Headers b = a;  // shares a's list until one of them changes
  b.Add("X-Two", "2");
  b.Set("host", "other");
  a.Remove("X-One");
  ASSERT_EQ(a.all().size(), 1u);
  EXPECT_EQ(a.Get("HOST"), "example.com");
  EXPECT_FALSE(a.Has("X-Two"));
  ASSERT_EQ(b.all().size(), 3u);
  EXPECT_EQ(b.all()[0].name, "X-One");
  EXPECT_EQ(b.Get("Host"), "other");
  EXPECT_EQ(b.Get("x-two"), "2");
}

TEST(HeadersTest, ViewsOutliveTheCopyTheyCameFrom) {
  Headers original;
  original.Add("Authorization", std::string(200, 'a'));
  std::string_view value;
  {
    Headers copy = original;
    value = *copy.Get("authorization");
  }
  EXPECT_EQ(value, std::string(200, 'a'));  // the list lives as long as `original`
  Request r;
  r.headers = original;
  Request moved = std::move(r);
  EXPECT_EQ(moved.headers.Get("Authorization"), value);
}

TEST(HeadersTest, EmptyAndMovedFrom) {
  Headers h;
  EXPECT_TRUE(h.empty());
  EXPECT_TRUE(h.all().empty());
  EXPECT_FALSE(h.Get("x").has_value());
  h.Remove("x");
  h.Add("A", "1");
  Headers moved = std::move(h);
  EXPECT_EQ(moved.Get("a"), "1");
  h.Add("B", "2");  // a moved-from list is usable again
  EXPECT_EQ(h.all().size(), 1u);
  EXPECT_EQ(moved.all().size(), 1u);
}

TEST(HeadersTest, CopiesChangedOnSeveralThreads) {
  Headers base;
  for (int i = 0; i < 20; ++i) base.Add("H" + std::to_string(i), std::to_string(i));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&base, t] {
      for (int i = 0; i < 2000; ++i) {
        Headers mine = base;
        mine.Set("H3", std::to_string(t));
        ASSERT_EQ(mine.Get("h3"), std::to_string(t));
        ASSERT_EQ(mine.Get("h4"), "4");
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(base.Get("H3"), "3");
  EXPECT_EQ(base.all().size(), 20u);
}

TEST(FormatHttpDateTest, Rfc7231ImfFixdate) {
  using namespace std::chrono;
  // RFC 7231's example.
  EXPECT_EQ(FormatHttpDate(sys_days(year{1994} / 11 / 6) + 8h + 49min + 37s),
            "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(FormatHttpDate(sys_days(year{2026} / 1 / 1) + 0s), "Thu, 01 Jan 2026 00:00:00 GMT");
  EXPECT_EQ(FormatHttpDate(sys_days(year{2024} / 2 / 29) + 23h + 59min + 59s + 999ms),
            "Thu, 29 Feb 2024 23:59:59 GMT");
}

}  // namespace
}  // namespace inferd::http
