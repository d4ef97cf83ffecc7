// StoreRouter: calls go to the bucket's store, else the default; the config shape parses.
#include "store/store_router.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "store/s3_store.h"
#include "store/store_test_util.h"

namespace inferd::store {
namespace {

using testing::ReadAll;
using testing::StoreFixture;
using testing::StringSource;

// The fixture's store ("bkt") is the embedded one; a second FilesystemStore plays the remote.
class StoreRouterTest : public StoreFixture {
 protected:
  std::unique_ptr<FilesystemStore> OpenRemote() {
    FilesystemStoreOptions options;
    options.root = dir_ / "remote";
    options.fsync = false;
    auto s = FilesystemStore::Open(options);
    EXPECT_TRUE(s.ok());
    EXPECT_TRUE((*s)->CreateBucket("models").ok());
    EXPECT_TRUE((*s)->CreateBucket("bkt").ok());
    return std::move(*s);
  }
};

TEST_F(StoreRouterTest, RoutesByBucketElseDefault) {
  RemoteStores remote;
  auto owned = OpenRemote();
  FilesystemStore* remote_store = owned.get();
  remote.buckets["models"] = std::move(owned);
  StoreRouter router(*store_, std::move(remote));
  EXPECT_TRUE(router.IsEmbedded("bkt"));
  EXPECT_FALSE(router.IsEmbedded("models"));
  EXPECT_EQ(&router.For("models"), remote_store);

  StringSource a("remote bytes"), b("local bytes");
  ASSERT_TRUE(router.Put("models", "m.tar.gz", {}, a).ok());
  ASSERT_TRUE(router.Put("bkt", "x", {}, b).ok());
  EXPECT_TRUE(remote_store->Head("models", "m.tar.gz").ok());
  EXPECT_EQ(store_->Head("models", "m.tar.gz").error().aws_code, "NoSuchBucket");
  EXPECT_EQ(remote_store->Head("bkt", "x").error().aws_code, "NoSuchKey");

  auto get = router.Get("models", "m.tar.gz", RangeSpec{0, 5});
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(ReadAll(**get), "remote");
  EXPECT_EQ(router.Head("bkt", "x")->size, 11u);
  EXPECT_EQ(router.List("models", {})->objects.size(), 1u);
  EXPECT_TRUE(router.Delete("models", "m.tar.gz").ok());
  EXPECT_EQ(router.Head("models", "m.tar.gz").error().aws_code, "NoSuchKey");
}

TEST_F(StoreRouterTest, RemoteDefaultWithEmbeddedExceptions) {
  RemoteStores remote;
  remote.default_store = OpenRemote();
  ObjectStore* remote_store = remote.default_store.get();
  remote.buckets["bkt"] = nullptr;  // "embedded"
  StoreRouter router(*store_, std::move(remote));
  EXPECT_EQ(&router.For("anything"), remote_store);
  EXPECT_TRUE(router.IsEmbedded("bkt"));
}

TEST(StoreRouterConfigTest, ParsesTheObjectStoresShape) {
  auto parsed = RemoteStoresFromJson(boost::json::parse(R"({
      "default": "embedded",
      "buckets": {
        "models": {"endpoint": "https://s3.eu-west-1.amazonaws.com", "region": "eu-west-1",
                   "access_key_id": "AK", "secret_access_key": "SK", "path_style": false},
        "scratch": "embedded"}})"));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->default_store, nullptr);
  ASSERT_EQ(parsed->buckets.size(), 2u);
  auto* s3 = dynamic_cast<S3Store*>(parsed->buckets.at("models").get());
  ASSERT_NE(s3, nullptr);
  EXPECT_EQ(s3->options().region, "eu-west-1");
  EXPECT_FALSE(s3->options().path_style);
  EXPECT_EQ(parsed->buckets.at("scratch"), nullptr);

  auto remote_default = RemoteStoresFromJson(
      boost::json::parse(R"({"default": {"endpoint": "http://10.0.0.1:9000"}})"));
  ASSERT_TRUE(remote_default.ok()) << remote_default.error().message;
  EXPECT_NE(remote_default->default_store, nullptr);
  EXPECT_TRUE(RemoteStoresFromJson(boost::json::value()).ok());  // absent: all embedded

  auto error = [](std::string_view json) {
    auto r = RemoteStoresFromJson(boost::json::parse(json));
    EXPECT_FALSE(r.ok()) << json;
    return r.ok() ? std::string() : r.error().message;
  };
  EXPECT_NE(error(R"({"defaults": "embedded"})").find("unknown field \"defaults\""),
            std::string::npos);
  EXPECT_NE(error(R"({"default": "local"})").find("object_stores.default must be \"embedded\""),
            std::string::npos);
  EXPECT_NE(error(R"({"buckets": {"m": {"endpoint": "http://h/x"}}})")
                .find("object_stores.buckets.m: S3 store: endpoint"),
            std::string::npos);
  EXPECT_NE(error(R"({"buckets": []})").find("map bucket names"), std::string::npos);
}

}  // namespace
}  // namespace inferd::store
