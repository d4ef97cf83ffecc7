// S3Store's ObjectStore behaviour against real S3-compatible servers, started by the test:
// moto_server (an independent implementation) and inferd's own S3 API (INFERD_BIN names the
// binary). Each backend is one instantiation of the same tests. Label e2e: they start processes.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <map>

#include "http/sigv4.h"
#include "store/s3_store.h"
#include "store/s3_store_internal.h"
#include "store/s3_test_servers.h"
#include "store/store_test_util.h"

namespace inferd::store {
namespace {

using testing::PatternSource;
using testing::ReadAll;
using testing::S3Server;
using testing::StringSource;
using namespace std::chrono_literals;

ListOptions Opts(std::string prefix, std::string delimiter, std::string start_after, int max_keys) {
  ListOptions o;
  o.prefix = std::move(prefix);
  o.delimiter = std::move(delimiter);
  o.start_after = std::move(start_after);
  o.max_keys = max_keys;
  return o;
}

// ---- against real servers ----

std::map<std::string, std::unique_ptr<S3Server>>& Servers() {
  static auto* servers = new std::map<std::string, std::unique_ptr<S3Server>>();
  return *servers;
}

// Stops the servers when the test program ends.
class ServersEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    for (auto& [name, server] : Servers()) {
      server->process.reset();
      if (!server->dir.empty()) std::filesystem::remove_all(server->dir);
    }
    Servers().clear();
  }
};
[[maybe_unused]] ::testing::Environment* const kServers =
    ::testing::AddGlobalTestEnvironment(new ServersEnvironment);

S3Server& ServerFor(const std::string& name) {
  auto& slot = Servers()[name];
  if (!slot) {
    slot = std::make_unique<S3Server>();
    if (name == "moto") testing::StartMoto(*slot);
    if (name == "inferd") testing::StartInferd(*slot);
  }
  return *slot;
}

using testing::RssKiB;

class RemoteStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    server_ = &ServerFor(GetParam());
    if (!server_->skip_reason.empty()) GTEST_SKIP() << server_->skip_reason;
    store_ = MakeStore(server_->secret_access_key);
    static int counter = 0;
    bucket_ = "t" + std::to_string(++counter) + "-" + GetParam();
    Status created = store_->CreateBucket(bucket_);
    ASSERT_TRUE(created.ok()) << created.error().message;
  }

  std::unique_ptr<S3Store> MakeStore(const std::string& secret, uint64_t part_size = 5 << 20) {
    S3StoreOptions o;
    o.endpoint = server_->endpoint;
    o.access_key_id = server_->access_key_id;
    o.secret_access_key = secret;
    o.part_size = part_size;
    auto store = S3Store::Create(o);
    EXPECT_TRUE(store.ok());
    return store.ok() ? std::move(*store) : nullptr;
  }

  Result<ObjectInfo> Put(const std::string& key, const std::string& data,
                         const ObjectAttributes& attrs = {}) {
    StringSource src(data, 100000);
    return store_->Put(bucket_, key, attrs, src);
  }
  std::string GetString(const std::string& key, std::optional<RangeSpec> range = {}) {
    auto r = store_->Get(bucket_, key, range);
    if (!r.ok()) return "<error: " + r.error().aws_code + ">";
    return ReadAll(**r);
  }
  // The keys and common prefixes of every page, listed `page` at a time.
  std::vector<std::string> ListAll(ListOptions options, int page) {
    std::vector<std::string> out;
    options.max_keys = page;
    for (int pages = 0; pages < 100; ++pages) {
      auto r = store_->List(bucket_, options);
      EXPECT_TRUE(r.ok()) << r.error().message;
      if (!r.ok()) break;
      EXPECT_LE(r->objects.size() + r->common_prefixes.size(), static_cast<size_t>(page));
      for (auto& o : r->objects) out.push_back(o.key);
      for (auto& p : r->common_prefixes) out.push_back(p + "*");
      if (!r->truncated) break;
      options.start_after = r->next_start_after;
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  // In-progress multipart uploads of the bucket, straight from the service.
  std::string UploadsListing() {
    http::Client client;
    auto r = client.Do(store_->Prepare("GET", bucket_, "", {{"uploads", ""}}, {}, ""));
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200) << r->body;
    return r->body;
  }

  S3Server* server_ = nullptr;
  std::unique_ptr<S3Store> store_;
  std::string bucket_;
};

TEST_P(RemoteStoreTest, PutHeadGetDeleteWithAttributes) {
  ObjectAttributes attrs;
  attrs.content_type = "text/plain";
  attrs.headers = {{"x-amz-meta-color", "blue"},
                   {"Cache-Control", "max-age=60"},
                   {"Content-Disposition", "attachment; filename=\"a.txt\""}};
  auto put = Put("dir/hello.txt", "hello world", attrs);
  ASSERT_TRUE(put.ok()) << put.error().message;
  EXPECT_EQ(put->size, 11u);
  EXPECT_EQ(put->etag, "5eb63bbbe01eeed093cb22bb8f5acdc3");  // MD5, no quotes
  EXPECT_GT(put->last_modified, 1.6e9);

  auto head = store_->Head(bucket_, "dir/hello.txt");
  ASSERT_TRUE(head.ok()) << head.error().message;
  EXPECT_EQ(head->size, 11u);
  EXPECT_EQ(head->etag, put->etag);
  EXPECT_NEAR(head->last_modified, put->last_modified, 5);
  EXPECT_EQ(head->attributes.content_type, "text/plain");
  std::map<std::string, std::string> got;
  for (auto& h : head->attributes.headers) {
    std::string name = h.name;
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    got[name] = h.value;
  }
  EXPECT_EQ(got["x-amz-meta-color"], "blue");
  EXPECT_EQ(got["cache-control"], "max-age=60");
  EXPECT_EQ(got["content-disposition"], "attachment; filename=\"a.txt\"");

  auto get = store_->Get(bucket_, "dir/hello.txt");
  ASSERT_TRUE(get.ok()) << get.error().message;
  EXPECT_EQ((*get)->info().etag, put->etag);
  EXPECT_EQ((*get)->info().size, 11u);
  EXPECT_EQ((*get)->info().attributes.content_type, "text/plain");
  EXPECT_EQ((*get)->first(), 0u);
  EXPECT_EQ((*get)->length(), 11u);
  EXPECT_EQ(ReadAll(**get), "hello world");

  ASSERT_TRUE(Put("dir/hello.txt", "replaced").ok());
  EXPECT_EQ(GetString("dir/hello.txt"), "replaced");
  ASSERT_TRUE(store_->Delete(bucket_, "dir/hello.txt").ok());
  EXPECT_EQ(store_->Head(bucket_, "dir/hello.txt").error().aws_code, "NoSuchKey");
  EXPECT_TRUE(store_->Delete(bucket_, "dir/hello.txt").ok()) << "deleting a missing key succeeds";
}

TEST_P(RemoteStoreTest, KeysSurviveEncoding) {
  const std::vector<std::string> keys = {
      "a b+c%d&e=f?g#h",          "ünï/cødé",   "x/../y", "tab\there",
      "semi;colon,comma'quote\"", "~tilde*star"};
  for (const auto& key : keys) {
    auto put = Put(key, "v:" + key);
    ASSERT_TRUE(put.ok()) << key << ": " << put.error().message;
    EXPECT_EQ(GetString(key), "v:" + key);
  }
  std::vector<std::string> expected = keys;
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(ListAll({}, 1000), expected);
  EXPECT_EQ(ListAll({}, 2), expected);
}

TEST_P(RemoteStoreTest, EmptyObject) {
  auto put = Put("empty", "");
  ASSERT_TRUE(put.ok()) << put.error().message;
  EXPECT_EQ(put->etag, "d41d8cd98f00b204e9800998ecf8427e");
  auto get = store_->Get(bucket_, "empty");
  ASSERT_TRUE(get.ok()) << get.error().message;
  EXPECT_EQ((*get)->length(), 0u);
  EXPECT_EQ((*get)->info().etag, put->etag);
  EXPECT_EQ(ReadAll(**get), "");
  EXPECT_EQ(GetString("empty", RangeSpec{0, std::nullopt}), "<error: InvalidRange>");
  EXPECT_EQ(GetString("empty", RangeSpec{std::nullopt, 1}), "<error: InvalidRange>");
}

TEST_P(RemoteStoreTest, RangesResolveAsTheEmbeddedStore) {
  // 3 MiB: ranges inside the first MiB come from one request; others stream the rest.
  constexpr uint64_t kSize = 3 << 20;
  PatternSource src(kSize);
  ASSERT_TRUE(store_->Put(bucket_, "r", {}, src).ok());
  auto expect = [&](RangeSpec range, uint64_t first, uint64_t length) {
    auto get = store_->Get(bucket_, "r", range);
    ASSERT_TRUE(get.ok()) << get.error().message;
    EXPECT_EQ((*get)->first(), first);
    EXPECT_EQ((*get)->length(), length);
    EXPECT_EQ((*get)->info().size, kSize);
    std::string data = ReadAll(**get, 100000);
    ASSERT_EQ(data.size(), length);
    for (uint64_t i = 0; i < length; ++i) {
      ASSERT_EQ(data[i], PatternSource::Byte(first + i)) << "byte " << first + i;
    }
  };
  expect({0, 9}, 0, 10);
  expect({5, 5}, 5, 1);
  expect({kSize - 10, std::nullopt}, kSize - 10, 10);
  expect({kSize - 10, kSize + 100}, kSize - 10, 10);  // clamped
  expect({std::nullopt, 7}, kSize - 7, 7);
  expect({std::nullopt, kSize + 1}, 0, kSize);  // suffix longer than the object
  expect({(1 << 20) - 10, (2 << 20) + 10}, (1 << 20) - 10, (1 << 20) + 21);  // across the probe
  expect({std::nullopt, 2000000}, kSize - 2000000, 2000000);                 // long suffix
  expect({2000000, std::nullopt}, 2000000, kSize - 2000000);
  EXPECT_EQ(GetString("r", RangeSpec{kSize, std::nullopt}), "<error: InvalidRange>");
  EXPECT_EQ(GetString("r", RangeSpec{10, 5}), "<error: InvalidRange>");
  EXPECT_EQ(GetString("r", RangeSpec{std::nullopt, 0}), "<error: InvalidRange>");
  EXPECT_EQ(GetString("missing", RangeSpec{10, 5}), "<error: NoSuchKey>");
}

TEST_P(RemoteStoreTest, ListsWithPrefixDelimiterAndPages) {
  for (const char* key : {"a/1", "a/2", "a/b/3", "b/1", "c", "d/e/f", "d/g"}) {
    ASSERT_TRUE(Put(key, key).ok());
  }
  auto all = store_->List(bucket_, {});
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(all->objects.size(), 7u);
  EXPECT_FALSE(all->truncated);
  EXPECT_EQ(all->objects[0].key, "a/1");
  EXPECT_EQ(all->objects[0].size, 3u);
  EXPECT_EQ(all->objects[0].etag.size(), 32u);
  EXPECT_GT(all->objects[0].last_modified, 1.6e9);

  using V = std::vector<std::string>;
  EXPECT_EQ(ListAll(Opts("a/", "", "", 1000), 1000), (V{"a/1", "a/2", "a/b/3"}));
  EXPECT_EQ(ListAll(Opts("", "/", "", 1000), 1000), (V{"a/*", "b/*", "c", "d/*"}));
  EXPECT_EQ(ListAll(Opts("a/", "/", "", 1000), 1000), (V{"a/1", "a/2", "a/b/*"}));
  EXPECT_EQ(ListAll(Opts("", "", "b/1", 1000), 1000), (V{"c", "d/e/f", "d/g"}));
  for (int page : {1, 2, 3}) {
    EXPECT_EQ(ListAll({}, page).size(), 7u) << page;
    EXPECT_EQ(ListAll(Opts("", "/", "", 1000), page), (V{"a/*", "b/*", "c", "d/*"})) << page;
  }
  auto one = store_->List(bucket_, Opts("", "", "", 1));
  ASSERT_TRUE(one.ok());
  EXPECT_TRUE(one->truncated);
  EXPECT_EQ(one->next_start_after, "a/1");
  auto none = store_->List(bucket_, Opts("", "", "", 0));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->objects.empty());
  EXPECT_FALSE(none->truncated);
  EXPECT_EQ(store_->List(bucket_, Opts("", "", "", -1)).error().code, Errc::kValidation);
}

TEST_P(RemoteStoreTest, MissingBucketAndKey) {
  const std::string nobucket = "no-such-bucket-" + GetParam();
  EXPECT_EQ(store_->Head(bucket_, "nope").error().aws_code, "NoSuchKey");
  auto get = store_->Get(bucket_, "nope");
  ASSERT_FALSE(get.ok());
  EXPECT_EQ(get.error().code, Errc::kNotFound);
  EXPECT_EQ(get.error().aws_code, "NoSuchKey");
  EXPECT_NE(get.error().message.find("\"nope\""), std::string::npos) << get.error().message;

  EXPECT_EQ(store_->Head(nobucket, "k").error().aws_code, "NoSuchBucket");
  EXPECT_EQ(store_->Get(nobucket, "k").error().aws_code, "NoSuchBucket");
  EXPECT_EQ(store_->Delete(nobucket, "k").error().aws_code, "NoSuchBucket");
  EXPECT_EQ(store_->List(nobucket, {}).error().aws_code, "NoSuchBucket");
  StringSource src("x");
  auto put = store_->Put(nobucket, "k", {}, src);
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.error().code, Errc::kNotFound);
  EXPECT_EQ(put.error().aws_code, "NoSuchBucket");
}

TEST_P(RemoteStoreTest, WrongCredentialsAreAccessDenied) {
  if (!server_->checks_signatures) GTEST_SKIP() << GetParam() << " does not check signatures";
  auto wrong = MakeStore("not-the-secret");
  auto get = wrong->Get(bucket_, "k");
  ASSERT_FALSE(get.ok());
  EXPECT_EQ(get.error().code, Errc::kAccessDenied);
  EXPECT_EQ(get.error().aws_code, "SignatureDoesNotMatch");
  EXPECT_NE(get.error().message.find("check the credentials"), std::string::npos);
  EXPECT_EQ(wrong->Head(bucket_, "k").error().code, Errc::kAccessDenied);
}

TEST_P(RemoteStoreTest, MultipartStreamsTwentyMegabytes) {
  constexpr uint64_t kSize = 20'000'000;  // four 5 MiB parts and a short one
  PatternSource src(kSize);
  bool all_read_before_commit = false;
  PutOptions options{.before_commit = [&] {
    char c;
    all_read_before_commit = *src.Read(&c, 1) == 0;
    return OkStatus();
  }};
  ObjectAttributes attrs{.content_type = "application/x-test",
                         .headers = {{"x-amz-meta-origin", "multipart"}}};
  auto put = store_->Put(bucket_, "big", attrs, src, options);
  ASSERT_TRUE(put.ok()) << put.error().message;
  EXPECT_TRUE(all_read_before_commit);
  EXPECT_EQ(put->size, kSize);
  EXPECT_TRUE(put->etag.ends_with("-4")) << put->etag;

  auto head = store_->Head(bucket_, "big");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->size, kSize);
  EXPECT_EQ(head->etag, put->etag);
  EXPECT_EQ(head->attributes.content_type, "application/x-test");

  auto get = store_->Get(bucket_, "big");
  ASSERT_TRUE(get.ok()) << get.error().message;
  std::string buf(1 << 20, '\0');
  uint64_t total = 0;
  for (;;) {
    auto n = (*get)->Read(buf.data(), buf.size());
    ASSERT_TRUE(n.ok()) << n.error().message;
    if (*n == 0) break;
    for (size_t i = 0; i < *n; ++i) {
      ASSERT_EQ(buf[i], PatternSource::Byte(total + i)) << "byte " << total + i;
    }
    total += *n;
  }
  EXPECT_EQ(total, kSize);
  EXPECT_EQ(UploadsListing().find("<UploadId>"), std::string::npos);
}

TEST_P(RemoteStoreTest, FailedPutsLeaveNothing) {
  // A source failing in the third part, and before_commit refusing, both abort the upload.
  PatternSource failing(20'000'000, 12'000'000);
  auto put = store_->Put(bucket_, "k", {}, failing);
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.error().message, "client went away");
  PatternSource src(12'000'000);
  PutOptions refuse{.before_commit = [] { return Status(Error(Errc::kValidation, "bad sum")); }};
  EXPECT_EQ(store_->Put(bucket_, "k", {}, src, refuse).error().message, "bad sum");
  StringSource small("small");
  EXPECT_EQ(store_->Put(bucket_, "k", {}, small, refuse).error().message, "bad sum");
  EXPECT_EQ(store_->Head(bucket_, "k").error().aws_code, "NoSuchKey");
  EXPECT_EQ(UploadsListing().find("<UploadId>"), std::string::npos);
}

TEST_P(RemoteStoreTest, ReaderMayStopEarly) {
  PatternSource src(8 << 20);
  ASSERT_TRUE(store_->Put(bucket_, "k", {}, src).ok());
  for (int i = 0; i < 3; ++i) {
    auto get = store_->Get(bucket_, "k");
    ASSERT_TRUE(get.ok());
    std::string buf(1 << 20, '\0');
    for (int j = 0; j < i + 1; ++j) ASSERT_TRUE((*get)->Read(buf.data(), buf.size()).ok());
  }  // each reader is destroyed mid-stream; its feeder stops
  EXPECT_EQ(GetString("k", RangeSpec{100, 103}).size(), 4u);
}

TEST_P(RemoteStoreTest, LargeObjectsKeepMemoryFlat) {
  constexpr uint64_t kSize = 64ull << 20;
  const long before = RssKiB();
  PatternSource src(kSize);
  auto put = store_->Put(bucket_, "huge", {}, src);
  ASSERT_TRUE(put.ok()) << put.error().message;
  auto get = store_->Get(bucket_, "huge");
  ASSERT_TRUE(get.ok()) << get.error().message;
  std::string buf(1 << 20, '\0');
  uint64_t total = 0;
  bool same = true;
  for (;;) {
    auto n = (*get)->Read(buf.data(), buf.size());
    ASSERT_TRUE(n.ok()) << n.error().message;
    if (*n == 0) break;
    for (size_t i = 0; i < *n && same; i += 4093) same = buf[i] == PatternSource::Byte(total + i);
    total += *n;
  }
  EXPECT_EQ(total, kSize);
  EXPECT_TRUE(same);
  const long growth_kib = RssKiB() - before;
  RecordProperty("rss_growth_kib", static_cast<int>(growth_kib));
  EXPECT_LT(growth_kib, 32 * 1024) << "resident memory grew by " << growth_kib << " KiB";
}

INSTANTIATE_TEST_SUITE_P(Moto, RemoteStoreTest, ::testing::Values("moto"));
INSTANTIATE_TEST_SUITE_P(Inferd, RemoteStoreTest, ::testing::Values("inferd"));

}  // namespace
}  // namespace inferd::store
