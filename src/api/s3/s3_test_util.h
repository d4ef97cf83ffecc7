// Test fixture for handler-level S3 tests: a FilesystemStore in a temp dir, a BlockingPool and an
// S3Api, driven like the server drives it (bodies streamed through a BodyPipe fed by a thread
// when StreamBody() says so, response pipes drained to the end).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <pugixml.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "api/s3/s3_api.h"
#include "common/blocking_pool.h"
#include "http/body_pipe.h"
#include "store/filesystem_store.h"

namespace inferd::api::s3::testing {

struct Reply {
  int status = 0;
  http::Headers headers;
  std::string body;
  std::string operation;
  bool streamed = false;  // the body came through a response pipe

  std::string Header(std::string_view name) const {
    return std::string(headers.Get(name).value_or(""));
  }
  // The S3 error code of an XML error body ("" if none).
  std::string ErrorCode() const {
    pugi::xml_document doc;
    if (!doc.load_string(body.c_str())) return "";
    return doc.child("Error").child_value("Code");
  }
  std::string ErrorMessage() const {
    pugi::xml_document doc;
    if (!doc.load_string(body.c_str())) return "";
    return doc.child("Error").child_value("Message");
  }
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

class S3ApiFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/inferd-s3-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    store::FilesystemStoreOptions o;
    o.root = dir_ / "objects";
    o.fsync = false;
    o.min_part_size = kMinPartSize;
    auto opened = store::FilesystemStore::Open(o);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    store_ = std::move(opened).value();
    pool_ = std::make_unique<BlockingPool>(3);
    MakeApi(S3ApiOptions{});
  }

  void TearDown() override {
    pool_->Stop();
    api_.reset();
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void MakeApi(S3ApiOptions options) {
    options.read_chunk_bytes = 4096;  // many pipe writes even for small objects
    options.pipe_bytes = 16 * 1024;
    api_ = std::make_unique<S3Api>(*store_, *pool_, std::move(options));
  }

  // Sends one request. `piece`: the size of the writes feeding a streamed body.
  Reply Send(std::string method, std::string target, const HeaderList& headers = {},
             std::string body = "", size_t piece = 1000,
             http::sigv4::Identity identity = {"AKID", "us-east-1", "s3", false}) {
    http::Request req;
    req.method = std::move(method);
    req.target = target;
    size_t q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos) req.query = target.substr(q + 1);
    req.headers.Add("Host", "127.0.0.1:9000");
    for (const auto& [k, v] : headers) req.headers.Add(k, v);
    if (!req.headers.Has("Content-Length")) {
      req.headers.Add("Content-Length", std::to_string(body.size()));
    }
    req.request_id = "req-" + std::to_string(++requests_);
    std::thread feeder;
    if (!body.empty() && api_->StreamBody(req)) {
      auto pipe = std::make_shared<http::BodyPipe>(64 * 1024);
      req.body_stream = pipe;
      feeder = std::thread([pipe, body = std::move(body), piece] {
        for (size_t i = 0; i < body.size(); i += piece) {
          if (!pipe->Write(std::string_view(body).substr(i, piece)).ok()) return;
        }
        pipe->Close();
      });
    } else {
      req.body = std::move(body);
    }
    std::promise<http::Response> promise;
    auto future = promise.get_future();
    api_->Handle(std::move(req), identity,
                 [&promise](http::Response r) { promise.set_value(std::move(r)); });
    Reply reply;
    if (future.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
      ADD_FAILURE() << "no response within 20 s";
      if (feeder.joinable()) feeder.detach();
      return reply;
    }
    http::Response r = future.get();
    reply.status = r.status;
    reply.headers = r.headers;
    reply.operation = r.operation;
    reply.body = r.body;
    if (r.body_stream) {
      reply.streamed = true;
      std::string buf(3000, '\0');
      while (true) {
        auto n = r.body_stream->Read(buf.data(), buf.size());
        if (!n.ok()) {
          ADD_FAILURE() << "response stream failed: " << n.error().message;
          break;
        }
        if (*n == 0) break;
        reply.body.append(buf.data(), *n);
      }
    }
    if (feeder.joinable()) feeder.join();
    return reply;
  }

  void CreateBucket(const std::string& name) {
    Reply r = Send("PUT", "/" + name);
    ASSERT_EQ(r.status, 200) << r.body;
  }

  void Put(const std::string& bucket, const std::string& encoded_key, const std::string& body,
           const HeaderList& headers = {}) {
    Reply r = Send("PUT", "/" + bucket + "/" + encoded_key, headers, body);
    ASSERT_EQ(r.status, 200) << r.body;
  }

  static constexpr uint64_t kMinPartSize = 5;

  std::filesystem::path dir_;
  std::unique_ptr<store::FilesystemStore> store_;
  std::unique_ptr<BlockingPool> pool_;
  std::unique_ptr<S3Api> api_;
  int requests_ = 0;
};

// Parses an XML body; fails the test if it is not XML.
inline pugi::xml_document ParseXml(const std::string& body) {
  pugi::xml_document doc;
  auto parsed = doc.load_string(body.c_str(), pugi::parse_default | pugi::parse_ws_pcdata_single);
  EXPECT_TRUE(parsed) << "not XML: " << body;
  return doc;
}

}  // namespace inferd::api::s3::testing
