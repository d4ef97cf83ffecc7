// S3Store: options, addressing and signing, with no server. The behaviour against real servers is
// in s3_store_remote_test.cc.
#include "store/s3_store.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <map>

#include "http/sigv4.h"
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

const auto kNow = FromEpochSeconds(1700000000);

S3StoreOptions BaseOptions() {
  S3StoreOptions o;
  o.endpoint = "http://127.0.0.1:9000";
  o.access_key_id = "AKID";
  o.secret_access_key = "secret";
  return o;
}

http::sigv4::VerifierOptions Credentials(std::string id, std::string secret) {
  http::sigv4::VerifierOptions o;
  o.credentials[std::move(id)] = std::move(secret);
  return o;
}

// ---- options ----

TEST(S3StoreOptionsTest, ValidateNamesTheProblem) {
  EXPECT_TRUE(BaseOptions().Validate().ok());
  auto expect_invalid = [](S3StoreOptions o, std::string_view what) {
    Status s = o.Validate();
    ASSERT_FALSE(s.ok()) << what;
    EXPECT_EQ(s.error().code, Errc::kValidation);
    EXPECT_NE(s.error().message.find(what), std::string::npos) << s.error().message;
  };
  S3StoreOptions o = BaseOptions();
  o.endpoint = "";
  expect_invalid(o, "endpoint is required");
  o.endpoint = "ftp://x";
  expect_invalid(o, "endpoint");
  o.endpoint = "http://host:9000/prefix";
  expect_invalid(o, "must not have a path");
  o = BaseOptions();
  o.path_style = false;
  expect_invalid(o, "needs a DNS name");
  o = BaseOptions();
  o.secret_access_key = "";
  expect_invalid(o, "both access_key_id and secret_access_key");
  o = BaseOptions();
  o.part_size = 1024;
  expect_invalid(o, "part_size");
  o = BaseOptions();
  o.access_key_id = o.secret_access_key = "";  // anonymous
  EXPECT_TRUE(o.Validate().ok());
}

TEST(S3StoreOptionsTest, FromJson) {
  auto config = boost::json::parse(R"({"endpoint": "https://s3.eu-west-1.amazonaws.com",
      "region": "eu-west-1", "access_key_id": "AK", "secret_access_key": "SK",
      "session_token": "TOK", "path_style": false, "verify_tls": false, "timeout_ms": 1500,
      "transfer_timeout_ms": 60000, "connect_timeout_ms": 700, "part_size_bytes": 16777216})");
  auto o = S3StoreOptionsFromJson(config.as_object());
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_EQ(o->endpoint, "https://s3.eu-west-1.amazonaws.com");
  EXPECT_EQ(o->region, "eu-west-1");
  EXPECT_EQ(o->session_token, "TOK");
  EXPECT_FALSE(o->path_style);
  EXPECT_FALSE(o->verify_tls);
  EXPECT_EQ(o->timeout, 1500ms);
  EXPECT_EQ(o->transfer_timeout, 60000ms);
  EXPECT_EQ(o->connect_timeout, 700ms);
  EXPECT_EQ(o->part_size, 16u << 20);

  auto error = [](std::string_view json) {
    auto r = S3StoreFromJson(boost::json::parse(json).as_object(), "object_stores.default");
    EXPECT_FALSE(r.ok()) << json;
    return r.ok() ? std::string() : r.error().message;
  };
  EXPECT_NE(error(R"({"endpoint": "http://h", "bucket": "x"})").find("unknown field \"bucket\""),
            std::string::npos);
  EXPECT_NE(error(R"({"endpoint": 3})").find("object_stores.default.endpoint must be a string"),
            std::string::npos);
  EXPECT_NE(error(R"({"endpoint": "http://h", "timeout_ms": -1})").find("positive integer"),
            std::string::npos);
  EXPECT_NE(error(R"({"region": "x"})").find("object_stores.default: S3 store: endpoint is"),
            std::string::npos);
}

TEST(S3StoreInternalTest, ParsesHttpDates) {
  EXPECT_EQ(s3_internal::ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
  EXPECT_FALSE(s3_internal::ParseHttpDate("yesterday").has_value());
}

// ---- addressing and signing ----

// The request as a server receives it, for the verifier.
http::Request Received(const http::ClientRequest& sent) {
  auto url = http::ParseUrl(sent.url);
  EXPECT_TRUE(url.ok());
  http::Request r;
  r.method = sent.method;
  r.target = url->target;
  const size_t q = url->target.find('?');
  r.path = url->target.substr(0, q);
  r.query = q == std::string::npos ? "" : url->target.substr(q + 1);
  r.headers = sent.headers;
  r.body = sent.body;
  return r;
}

TEST(S3StoreWireTest, PathStyleEncodesKeysAndSigns) {
  FakeClock clock(kNow);
  S3StoreOptions o = BaseOptions();
  o.clock = &clock;
  auto store = S3Store::Create(o);
  ASSERT_TRUE(store.ok());
  auto req = (*store)->Prepare("GET", "bkt", "dir/a b+c%d~é", {{"list-type", "2"}, {"x", "a/b c"}},
                               {}, "");
  EXPECT_EQ(req.url, "http://127.0.0.1:9000/bkt/dir/a%20b%2Bc%25d~%C3%A9?list-type=2&x=a%2Fb%20c");
  EXPECT_EQ(req.headers.Get("Host"), "127.0.0.1:9000");
  EXPECT_EQ(req.headers.Get("x-amz-content-sha256"), http::sigv4::Sha256Hex(""));
  ASSERT_TRUE(req.headers.Has("Authorization"));

  http::sigv4::Verifier good(Credentials("AKID", "secret"), clock);
  auto id = good.Verify(Received(req));
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_EQ(id->access_key_id, "AKID");
  EXPECT_EQ(id->region, "us-east-1");
  EXPECT_EQ(id->service, "s3");
  http::sigv4::Verifier other(Credentials("AKID", "other"), clock);
  EXPECT_EQ(other.Verify(Received(req)).error().code, Errc::kBadSignature);
}

TEST(S3StoreWireTest, VirtualHostedStyleAndSessionToken) {
  FakeClock clock(kNow);
  S3StoreOptions o = BaseOptions();
  o.endpoint = "https://s3.eu-west-1.amazonaws.com";
  o.region = "eu-west-1";
  o.path_style = false;
  o.session_token = "TOKEN";
  o.clock = &clock;
  auto store = S3Store::Create(o);
  ASSERT_TRUE(store.ok());
  auto req = (*store)->Prepare("PUT", "my-bucket", "k/v.bin", {}, {}, "data");
  EXPECT_EQ(req.url, "https://my-bucket.s3.eu-west-1.amazonaws.com/k/v.bin");
  EXPECT_EQ(req.headers.Get("Host"), "my-bucket.s3.eu-west-1.amazonaws.com");
  EXPECT_EQ(req.headers.Get("X-Amz-Security-Token"), "TOKEN");
  EXPECT_NE(req.headers.Get("Authorization")->find("x-amz-security-token"), std::string::npos);
  http::sigv4::Verifier verifier(Credentials("AKID", "secret"), clock);
  auto id = verifier.Verify(Received(req));
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_EQ(id->region, "eu-west-1");
}

TEST(S3StoreWireTest, AnonymousRequestsAreUnsigned) {
  S3StoreOptions o = BaseOptions();
  o.access_key_id = o.secret_access_key = "";
  auto store = S3Store::Create(o);
  ASSERT_TRUE(store.ok());
  auto req = (*store)->Prepare("GET", "public", "k", {}, {}, "");
  EXPECT_FALSE(req.headers.Has("Authorization"));
  EXPECT_EQ(req.url, "http://127.0.0.1:9000/public/k");
}

TEST(S3StoreWireTest, UnreachableEndpointIsUnavailable) {
  S3StoreOptions o = BaseOptions();
  o.endpoint = "http://127.0.0.1:" + std::to_string(testing::FreePort());
  auto store = S3Store::Create(o);
  ASSERT_TRUE(store.ok());
  for (auto error : {(*store)->Head("b", "k").error(), (*store)->Delete("b", "k").error(),
                     (*store)->List("b", {}).error()}) {
    EXPECT_EQ(error.code, Errc::kUnavailable);
    EXPECT_NE(error.message.find("could not be reached"), std::string::npos) << error.message;
    EXPECT_NE(error.message.find(o.endpoint), std::string::npos) << error.message;
  }
  StringSource src("x");
  EXPECT_EQ((*store)->Put("b", "k", {}, src).error().code, Errc::kUnavailable);
  EXPECT_EQ((*store)->Get("b", "k").error().code, Errc::kUnavailable);
}

}  // namespace
}  // namespace inferd::store
