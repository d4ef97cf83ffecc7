#include <gtest/gtest.h>

#include <cstdio>

#include "store/filesystem_store.h"
#include "store/store_test_util.h"

namespace inferd::store {
namespace {

using testing::StoreFixture;

class ListingTest : public StoreFixture {
 protected:
  void PutKeys(const std::vector<std::string>& keys) {
    for (const auto& k : keys) ASSERT_TRUE(Put(k, "x").ok()) << k;
  }
  // Objects and common prefixes of one page, in one list: prefixes marked with a trailing '*'.
  ListResult ListPage(const ListOptions& options) {
    auto r = store_->List("bkt", options);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : ListResult{};
  }
  static std::vector<std::string> Keys(const ListResult& r) {
    std::vector<std::string> out;
    for (const auto& o : r.objects) out.push_back(o.key);
    return out;
  }
  // Every entry of a listing, page by page (objects and prefixes merged in order).
  std::vector<std::string> ListAll(ListOptions options, int* pages = nullptr) {
    std::vector<std::string> out;
    int n = 0;
    for (;;) {
      ListResult r = ListPage(options);
      ++n;
      std::vector<std::string> page = Keys(r);
      page.insert(page.end(), r.common_prefixes.begin(), r.common_prefixes.end());
      std::sort(page.begin(), page.end());
      EXPECT_LE(page.size(), static_cast<size_t>(options.max_keys));
      out.insert(out.end(), page.begin(), page.end());
      if (!r.truncated) break;
      EXPECT_FALSE(r.next_start_after.empty());
      EXPECT_EQ(r.next_start_after, page.back());
      options.start_after = r.next_start_after;
      if (n > 10000) break;
    }
    if (pages) *pages = n;
    return out;
  }
};

TEST_F(ListingTest, ByteOrder) {
  PutKeys({"\xC3\xA9", "b", "a0", "a/b", "a", "A", "a-", "Z", "a/", "\x7F"});
  EXPECT_EQ(Keys(ListPage({})), (std::vector<std::string>{"A", "Z", "a", "a-", "a/", "a/b", "a0",
                                                          "b", "\x7F", "\xC3\xA9"}));
}

TEST_F(ListingTest, PrefixAndDelimiter) {
  PutKeys({"photos/2023/a.jpg", "photos/2023/b.jpg", "photos/2024/c.jpg", "photos/readme", "photos",
           "videos/x", "top.txt", "photosynthesis"});
  ListOptions o;
  o.delimiter = "/";
  ListResult r = ListPage(o);
  EXPECT_EQ(Keys(r), (std::vector<std::string>{"photos", "photosynthesis", "top.txt"}));
  EXPECT_EQ(r.common_prefixes, (std::vector<std::string>{"photos/", "videos/"}));
  EXPECT_FALSE(r.truncated);

  o.prefix = "photos/";
  r = ListPage(o);
  EXPECT_EQ(Keys(r), (std::vector<std::string>{"photos/readme"}));
  EXPECT_EQ(r.common_prefixes, (std::vector<std::string>{"photos/2023/", "photos/2024/"}));

  o.prefix = "pho";
  r = ListPage(o);
  EXPECT_EQ(Keys(r), (std::vector<std::string>{"photos", "photosynthesis"}));
  EXPECT_EQ(r.common_prefixes, (std::vector<std::string>{"photos/"}));

  o = {};
  o.prefix = "photos/2";
  EXPECT_EQ(Keys(ListPage(o)), (std::vector<std::string>{"photos/2023/a.jpg", "photos/2023/b.jpg",
                                                         "photos/2024/c.jpg"}));
  o.prefix = "nothing";
  r = ListPage(o);
  EXPECT_TRUE(r.objects.empty());
  EXPECT_TRUE(r.common_prefixes.empty());

  // A multi-character delimiter.
  o = {};
  o.delimiter = "20";
  o.prefix = "photos/";
  r = ListPage(o);
  EXPECT_EQ(Keys(r), (std::vector<std::string>{"photos/readme"}));
  EXPECT_EQ(r.common_prefixes, (std::vector<std::string>{"photos/20"}));
}

TEST_F(ListingTest, CommonPrefixesCountTowardMaxKeysAndPaginate) {
  PutKeys({"a/1", "a/2", "b", "c/1", "c/2/x", "d", "e/1"});
  ListOptions o;
  o.delimiter = "/";
  o.max_keys = 2;
  ListResult r = ListPage(o);
  EXPECT_EQ(Keys(r), (std::vector<std::string>{"b"}));
  EXPECT_EQ(r.common_prefixes, (std::vector<std::string>{"a/"}));
  EXPECT_TRUE(r.truncated);
  EXPECT_EQ(r.next_start_after, "b");

  for (int max_keys : {1, 2, 3, 5, 1000}) {
    o.max_keys = max_keys;
    EXPECT_EQ(ListAll(o), (std::vector<std::string>{"a/", "b", "c/", "d", "e/"})) << max_keys;
  }
  // A page that ends on a common prefix continues after everything under it.
  o.max_keys = 1;
  r = ListPage(o);
  EXPECT_EQ(r.common_prefixes, (std::vector<std::string>{"a/"}));
  EXPECT_EQ(r.next_start_after, "a/");
  o.start_after = "a/";
  r = ListPage(o);
  EXPECT_EQ(Keys(r), (std::vector<std::string>{"b"}));
}

TEST_F(ListingTest, StartAfter) {
  PutKeys({"a", "b", "c", "d/1", "d/2", "e"});
  ListOptions o;
  o.start_after = "b";
  EXPECT_EQ(Keys(ListPage(o)), (std::vector<std::string>{"c", "d/1", "d/2", "e"}));
  o.start_after = "bb";
  EXPECT_EQ(Keys(ListPage(o)), (std::vector<std::string>{"c", "d/1", "d/2", "e"}));
  o.start_after = "z";
  EXPECT_TRUE(ListPage(o).objects.empty());
  o.start_after = "";
  o.prefix = "d/";
  o.start_after = "a";  // before the prefix: no effect
  EXPECT_EQ(Keys(ListPage(o)), (std::vector<std::string>{"d/1", "d/2"}));
  o.start_after = "d/1";
  EXPECT_EQ(Keys(ListPage(o)), (std::vector<std::string>{"d/2"}));
  // start_after inside a common prefix skips that prefix (as S3 treats a marker there).
  o = {};
  o.delimiter = "/";
  o.start_after = "d/1";
  ListResult r = ListPage(o);
  EXPECT_EQ(Keys(r), (std::vector<std::string>{"e"}));
  EXPECT_TRUE(r.common_prefixes.empty());
}

TEST_F(ListingTest, MaxKeysEdges) {
  PutKeys({"a", "b"});
  ListOptions o;
  o.max_keys = 0;
  ListResult r = ListPage(o);
  EXPECT_TRUE(r.objects.empty());
  EXPECT_FALSE(r.truncated);
  o.max_keys = 2;
  r = ListPage(o);
  EXPECT_EQ(r.objects.size(), 2u);
  EXPECT_FALSE(r.truncated);  // exactly full is not truncated
  EXPECT_TRUE(r.next_start_after.empty());
  o.max_keys = -1;
  auto bad = store_->List("bkt", o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::kValidation);
}

TEST_F(ListingTest, HighBytesInPrefixesAndDelimiters) {
  PutKeys({"\xFF", "\xFF\xFF",
           "\xFF"
           "a",
           "a\xFF"
           "b",
           "a\xFF"
           "c",
           "b", "\xFE\xFF"});
  ListOptions o;
  o.prefix = "\xFF";
  EXPECT_EQ(Keys(ListPage(o)), (std::vector<std::string>{"\xFF",
                                                         "\xFF"
                                                         "a",
                                                         "\xFF\xFF"}));
  o = {};
  o.delimiter = "\xFF";
  ListResult r = ListPage(o);
  EXPECT_EQ(Keys(r), (std::vector<std::string>{"b"}));
  EXPECT_EQ(r.common_prefixes, (std::vector<std::string>{"a\xFF", "\xFE\xFF", "\xFF"}));
}

TEST_F(ListingTest, PaginatesThousandsOfKeys) {
  fsync_ = false;  // 2,500 durable puts cost ~7,500 fsyncs: slow on some disks, and not the point
  Reopen();
  std::vector<std::string> keys;
  for (int i = 0; i < 2500; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "dir/k%05d", i * 7 % 2500);
    keys.push_back(name);
  }
  PutKeys(keys);
  std::sort(keys.begin(), keys.end());
  ListOptions o;
  o.max_keys = 1000;
  ListResult first = ListPage(o);
  EXPECT_EQ(first.objects.size(), 1000u);
  EXPECT_TRUE(first.truncated);
  EXPECT_EQ(first.next_start_after, keys[999]);
  int pages = 0;
  EXPECT_EQ(ListAll(o, &pages), keys);
  EXPECT_EQ(pages, 3);
  o.max_keys = 5000;  // clamped to 1000
  EXPECT_EQ(ListPage(o).objects.size(), 1000u);
  // Rolled up, the 2,500 keys are one entry.
  o.delimiter = "/";
  ListResult r = ListPage(o);
  EXPECT_TRUE(r.objects.empty());
  EXPECT_EQ(r.common_prefixes, (std::vector<std::string>{"dir/"}));
  EXPECT_FALSE(r.truncated);
}

}  // namespace
}  // namespace inferd::store
