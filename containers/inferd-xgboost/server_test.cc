// End-to-end tests of the inferd-xgboost binary: models trained in the test through libxgboost's
// C API, the server started as a process (SAGEMAKER_BIND_TO_PORT=0, SM_MODEL_DIR in a temp dir)
// and driven over HTTP. Every prediction is compared with libxgboost's own
// (XGBoosterPredictFromDMatrix) for the same rows. The binary is INFERD_XGBOOST_BIN if set.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <thread>

#include "inferd-xgboost/content_types.h"
#include "inferd-xgboost/encode.h"
#include "inferd-xgboost/test_models.h"
#include "testing/child_process.h"
#include "testing/http_client.h"

namespace inferd::xgboost_server {
namespace {

namespace fs = std::filesystem;
using containers::testing::BinaryPath;
using containers::testing::ChildProcess;
using containers::testing::HttpReply;
using containers::testing::Send;
using containers::testing::TempDir;
using testing::Dataset;
using ::testing::HasSubstr;
using testing::SavedFormat;

using Headers = std::map<std::string, std::string>;

// A model directory and an inferd-xgboost serving it.
class Server {
 public:
  explicit Server(const std::string& model_bytes, std::map<std::string, std::string> env = {},
                  const std::string& file_name = "xgboost-model") {
    std::ofstream(dir_.path() / file_name, std::ios::binary) << model_bytes;
    env["SM_MODEL_DIR"] = dir_.path().string();
    env["SAGEMAKER_BIND_TO_PORT"] = "0";
    env["SAGEMAKER_BIND_HOST"] = "127.0.0.1";
    process_ =
        std::make_unique<ChildProcess>(BinaryPath("INFERD_XGBOOST_BIN", INFERD_XGBOOST_BUILT_BIN),
                                       std::vector<std::string>{"serve"}, env);
    auto port = process_->WaitForPort();
    EXPECT_TRUE(port) << process_->Output();
    port_ = port.value_or(0);
  }
  HttpReply Invoke(const std::string& body, Headers headers) const {
    return Send(port_, "POST", "/invocations", body, headers);
  }
  uint16_t port() const { return port_; }
  ChildProcess& process() { return *process_; }

 private:
  TempDir dir_;
  std::unique_ptr<ChildProcess> process_;
  uint16_t port_ = 0;
};

std::string Num(float v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", static_cast<double>(v));  // round-trips a float
  return buf;
}

std::string Csv(const std::vector<float>& x, size_t cols, char sep = ',') {
  std::string out;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isnan(x[i])) out += Num(x[i]);
    out += (i + 1) % cols == 0 ? '\n' : sep;
  }
  return out;
}

// LIBSVM with a label and 1-based indices, missing values left out.
std::string Libsvm(const std::vector<float>& x, size_t cols, int base) {
  std::string out;
  for (size_t r = 0; r * cols < x.size(); ++r) {
    out += "0";
    for (size_t c = 0; c < cols; ++c) {
      float v = x[r * cols + c];
      if (!std::isnan(v)) out += " " + std::to_string(c + base) + ":" + Num(v);
    }
    out += "\n";
  }
  return out;
}

std::string JsonRows(const std::vector<float>& x, size_t cols) {
  std::string out = "{\"instances\": [";
  for (size_t r = 0; r * cols < x.size(); ++r) {
    out += r == 0 ? "{\"features\": [" : ", {\"features\": [";
    for (size_t c = 0; c < cols; ++c) {
      float v = x[r * cols + c];
      out += (c == 0 ? "" : ", ") + (std::isnan(v) ? std::string("null") : Num(v));
    }
    out += "]}";
  }
  return out + "]}";
}

std::string JsonLines(const std::vector<float>& x, size_t cols) {
  std::string out;
  for (size_t r = 0; r * cols < x.size(); ++r) {
    out += "{\"features\": [";
    for (size_t c = 0; c < cols; ++c) {
      float v = x[r * cols + c];
      out += (c == 0 ? "" : ", ") + (std::isnan(v) ? std::string("null") : Num(v));
    }
    out += "]}\n";
  }
  return out;
}

Predictions Expected(const std::string& model, const std::vector<float>& x, size_t rows,
                     size_t cols) {
  Predictions p;
  p.rows = rows;
  p.values = testing::ReferencePredict(model, x, rows, cols, &p.cols);
  p.per_row_vector = p.cols > 1;
  return p;
}

std::string ExpectedBody(const char* accept, const Predictions& p, bool batch = false) {
  return Encode(*OutputTypeFor(accept), p, batch);
}

constexpr size_t kRows = 40;

class XgboostServerTest : public ::testing::Test {
 protected:
  struct Fixture {
    Dataset data;
    std::string model;
    std::unique_ptr<Server> server;
  };

  static void SetUpTestSuite() {
    binary_ = new Fixture{testing::MakeDataset(300, 6, 2, 1), {}, nullptr};
    binary_->model = testing::TrainModel("binary:logistic", binary_->data, SavedFormat::kBinary);
    regression_ = new Fixture{testing::MakeDataset(300, 6, 0, 2), {}, nullptr};
    regression_->model =
        testing::TrainModel("reg:squarederror", regression_->data, SavedFormat::kJson);
    softprob_ = new Fixture{testing::MakeDataset(300, 6, 3, 3), {}, nullptr};
    softprob_->model = testing::TrainModel("multi:softprob", softprob_->data, SavedFormat::kUbj, 3);
    for (Fixture* f : {binary_, regression_, softprob_}) {
      f->server = std::make_unique<Server>(f->model);
    }
  }
  static void TearDownTestSuite() {
    for (Fixture* f : {binary_, regression_, softprob_}) delete f;
  }

  // Posts `body` (rows `x` of f's data, written somehow), expects 200 with libxgboost's
  // predictions for `x` encoded as `expected_type`.
  static void ExpectPredictions(const Fixture& f, const std::vector<float>& x,
                                const std::string& body, const std::string& content_type,
                                const char* accept, const char* expected_type) {
    const size_t rows = x.size() / f.data.cols;
    Headers h{{"Content-Type", content_type}};
    if (accept != nullptr) h["Accept"] = accept;
    HttpReply r = f.server->Invoke(body, h);
    ASSERT_TRUE(r.ok()) << r.error;
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.Header("content-type"), expected_type);
    EXPECT_EQ(r.body, ExpectedBody(expected_type, Expected(f.model, x, rows, f.data.cols)))
        << content_type << " / " << (accept ? accept : "(no Accept)");
  }

  static Fixture* binary_;
  static Fixture* regression_;
  static Fixture* softprob_;
};
XgboostServerTest::Fixture* XgboostServerTest::binary_ = nullptr;
XgboostServerTest::Fixture* XgboostServerTest::regression_ = nullptr;
XgboostServerTest::Fixture* XgboostServerTest::softprob_ = nullptr;

TEST_F(XgboostServerTest, PingAnswers200) {
  HttpReply r = Send(binary_->server->port(), "GET", "/ping");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 200);
}

TEST_F(XgboostServerTest, CsvScoresAreLibxgboostsToTheBit) {
  for (Fixture* f : {binary_, regression_}) {
    auto x = testing::Rows(f->data, 0, kRows);
    HttpReply r = f->server->Invoke(Csv(x, f->data.cols), {{"Content-Type", "text/csv"}});
    ASSERT_EQ(r.status, 200) << r.body << r.error;
    auto expected = testing::ReferencePredict(f->model, x, kRows, f->data.cols);
    std::vector<float> got;
    for (size_t pos = 0; pos < r.body.size();) {
      size_t comma = r.body.find(',', pos);
      got.push_back(
          static_cast<float>(std::strtod(r.body.substr(pos, comma - pos).c_str(), nullptr)));
      pos = comma == std::string::npos ? r.body.size() : comma + 1;
    }
    EXPECT_EQ(got, expected);
  }
}

TEST_F(XgboostServerTest, EveryInputFormatGivesLibxgboostsPredictions) {
  for (Fixture* f : {binary_, regression_, softprob_}) {
    auto x = testing::Rows(f->data, 0, kRows);
    size_t cols = f->data.cols;
    ExpectPredictions(*f, x, Csv(x, cols), "text/csv", nullptr, "text/csv");
    ExpectPredictions(*f, x, Csv(x, cols, ';'), "text/csv; charset=utf-8", nullptr, "text/csv");
    ExpectPredictions(*f, x, Csv(x, cols, '\t'), "TEXT/CSV", nullptr, "text/csv");
    ExpectPredictions(*f, x, Libsvm(x, cols, 1), "text/libsvm", nullptr, "text/csv");
    ExpectPredictions(*f, x, Libsvm(x, cols, 1), "text/x-libsvm", nullptr, "text/csv");
    ExpectPredictions(*f, x, JsonRows(x, cols), "application/json", nullptr, "text/csv");
    ExpectPredictions(*f, x, JsonLines(x, cols), "application/jsonlines", nullptr, "text/csv");
  }
}

TEST_F(XgboostServerTest, EveryAcceptEncodesThePredictions) {
  for (Fixture* f : {binary_, softprob_}) {
    auto x = testing::Rows(f->data, 0, kRows);
    auto body = Csv(x, f->data.cols);
    ExpectPredictions(*f, x, body, "text/csv", "text/csv", "text/csv");
    ExpectPredictions(*f, x, body, "text/csv", "application/json", "application/json");
    ExpectPredictions(*f, x, body, "text/csv", "application/jsonlines", "application/jsonlines");
    ExpectPredictions(*f, x, body, "text/csv", "*/*", "text/csv");
    ExpectPredictions(*f, x, body, "text/csv", "text/html, application/json", "application/json");
  }
}

TEST_F(XgboostServerTest, SoftprobRowsArePythonLists) {
  auto x = testing::Rows(softprob_->data, 0, 2);
  HttpReply r = softprob_->server->Invoke(Csv(x, 6), {{"Content-Type", "text/csv"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, ::testing::MatchesRegex(R"(\[[^],]+, [^],]+, [^],]+\],\[[^]]+\])"));
}

TEST_F(XgboostServerTest, ZeroBasedLibsvmWithFeatureZeroIsReadAsGiven) {
  auto x = testing::Rows(binary_->data, 0, kRows);
  x[0] = 0.25f;  // so that the payload holds index 0
  ExpectPredictions(*binary_, x, Libsvm(x, 6, 0), "text/libsvm", nullptr, "text/csv");
}

TEST_F(XgboostServerTest, LabelColumnIsDroppedWithLabelSize1) {
  auto x = testing::Rows(regression_->data, 0, kRows);
  std::string body;
  for (size_t r = 0; r < kRows; ++r) {
    body += "9.5";
    for (size_t c = 0; c < 6; ++c) {
      float v = x[r * 6 + c];
      body += "," + (std::isnan(v) ? std::string() : Num(v));
    }
    body += "\r\n";
  }
  ExpectPredictions(*regression_, x, body, "text/csv; label_size=1", nullptr, "text/csv");
}

TEST_F(XgboostServerTest, EmptyBodyAnswers204) {
  HttpReply r = binary_->server->Invoke("", {{"Content-Type", "text/csv"}});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(r.body, "");
}

TEST_F(XgboostServerTest, UnsupportedContentTypeAnswers415) {
  HttpReply r = binary_->server->Invoke("1,2,3", {{"Content-Type", "application/octet-stream"}});
  EXPECT_EQ(r.status, 415);
  EXPECT_THAT(r.body, HasSubstr("Content-type application/octet-stream not supported"));
}

TEST_F(XgboostServerTest, UnsupportedAcceptAnswers406) {
  HttpReply r = binary_->server->Invoke("1,2,3,4,5,6",
                                        {{"Content-Type", "text/csv"}, {"Accept", "text/html"}});
  EXPECT_EQ(r.status, 406);
  EXPECT_THAT(r.body, HasSubstr("Accept type text/html is not supported"));
}

TEST_F(XgboostServerTest, BadPayloadsAnswer400) {
  HttpReply mismatch = binary_->server->Invoke("1,2,3", {{"Content-Type", "text/csv"}});
  EXPECT_EQ(mismatch.status, 400);
  EXPECT_EQ(mismatch.body,
            "Unable to evaluate payload provided: Feature size of csv inference data 3 is not "
            "consistent with feature size of trained model 6.");
  HttpReply libsvm = binary_->server->Invoke("0 1:1 9:2", {{"Content-Type", "text/libsvm"}});
  EXPECT_EQ(libsvm.status, 400);
  EXPECT_THAT(libsvm.body, HasSubstr("Feature size of libsvm inference data 9 is larger"));
  HttpReply label = binary_->server->Invoke("1,2", {{"Content-Type", "text/csv;label_size=2"}});
  EXPECT_EQ(label.status, 400);
  EXPECT_THAT(label.body, HasSubstr("label_size must be equal to 1"));
  HttpReply garbage = binary_->server->Invoke("a,b,c,d,e,f", {{"Content-Type", "text/csv"}});
  EXPECT_EQ(garbage.status, 400);
  EXPECT_THAT(garbage.body, HasSubstr("could not convert string to float: 'a'"));
  HttpReply json =
      binary_->server->Invoke("{\"instances\": 1", {{"Content-Type", "application/json"}});
  EXPECT_EQ(json.status, 400);
  EXPECT_THAT(json.body, HasSubstr("not valid JSON"));
}

TEST_F(XgboostServerTest, MissingContentTypeMeansLibsvm) {
  auto x = testing::Rows(binary_->data, 0, 3);
  HttpReply r = binary_->server->Invoke(Libsvm(x, 6, 1), {});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, ExpectedBody("text/csv", Expected(binary_->model, x, 3, 6)));
}

TEST_F(XgboostServerTest, ConcurrentRequestsEachGetTheirOwnPredictions) {
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 8; ++i) {
        size_t begin = static_cast<size_t>(t * 37 + i * 5) % 280;
        auto x = testing::Rows(binary_->data, begin, begin + 10);
        HttpReply r = binary_->server->Invoke(Csv(x, 6), {{"Content-Type", "text/csv"}});
        if (r.status != 200 ||
            r.body != ExpectedBody("text/csv", Expected(binary_->model, x, 10, 6))) {
          ++wrong;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(XgboostServerTest, ExecutionParameters) {
  HttpReply r = Send(binary_->server->port(), "GET", "/execution-parameters");
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr("\"BatchStrategy\": \"MULTI_RECORD\", \"MaxPayloadInMB\": 6}"));
}

TEST(XgboostServerEnvTest, EveryModelFormatServesTheSamePredictions) {
  Dataset d = testing::MakeDataset(200, 4, 2, 9);
  auto x = testing::Rows(d, 0, 20);
  std::string first;
  for (auto f : {SavedFormat::kBinary, SavedFormat::kJson, SavedFormat::kUbj}) {
    std::string model = testing::TrainModel("binary:logistic", d, f);
    Server server(model);
    HttpReply r = server.Invoke(Csv(x, 4), {{"Content-Type", "text/csv"}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, ExpectedBody("text/csv", Expected(model, x, 20, 4)));
    if (first.empty()) first = r.body;
    EXPECT_EQ(r.body, first);
  }
}

TEST(XgboostServerEnvTest, DefaultAcceptAndBatchOutputComeFromTheEnvironment) {
  Dataset d = testing::MakeDataset(100, 3, 0, 4);
  std::string model = testing::TrainModel("reg:squarederror", d, SavedFormat::kJson);
  Server server(model, {{"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "application/jsonlines"},
                        {"SAGEMAKER_BATCH", "true"}});
  auto x = testing::Rows(d, 0, 5);
  HttpReply jsonl = server.Invoke(Csv(x, 3), {{"Content-Type", "text/csv"}});
  ASSERT_EQ(jsonl.status, 200) << jsonl.body;
  EXPECT_EQ(jsonl.Header("content-type"), "application/jsonlines");
  EXPECT_EQ(jsonl.body, ExpectedBody("application/jsonlines", Expected(model, x, 5, 3)));
  HttpReply csv = server.Invoke(Csv(x, 3), {{"Content-Type", "text/csv"}, {"Accept", "text/csv"}});
  ASSERT_EQ(csv.status, 200) << csv.body;
  EXPECT_EQ(csv.body, ExpectedBody("text/csv", Expected(model, x, 5, 3), /*batch=*/true));
}

TEST(XgboostServerEnvTest, BodiesAboveMaxContentLengthAnswer413) {
  Dataset d = testing::MakeDataset(50, 2, 0, 4);
  std::string model = testing::TrainModel("reg:squarederror", d, SavedFormat::kJson);
  Server server(model, {{"MAX_CONTENT_LENGTH", "1000"}});
  std::string small;
  while (small.size() < 900) small += "0.5,0.25\n";
  EXPECT_EQ(server.Invoke(small, {{"Content-Type", "text/csv"}}).status, 200);
  std::string big = small + small;
  HttpReply r = server.Invoke(big, {{"Content-Type", "text/csv"}});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 413);
}

TEST(XgboostServerEnvTest, MaxContentLengthIsCappedAt20MiB) {
  Dataset d = testing::MakeDataset(50, 2, 0, 4);
  Server server(testing::TrainModel("reg:squarederror", d, SavedFormat::kJson),
                {{"MAX_CONTENT_LENGTH", "104857600"}});
  HttpReply r = Send(server.port(), "GET", "/execution-parameters");
  EXPECT_THAT(r.body, HasSubstr("\"MaxPayloadInMB\": 20}"));
}

TEST(XgboostServerEnvTest, ServesTheSingleFileWhateverItsName) {
  Dataset d = testing::MakeDataset(50, 2, 0, 4);
  std::string model = testing::TrainModel("reg:squarederror", d, SavedFormat::kUbj);
  Server server(model, {}, "model.ubj");
  EXPECT_EQ(server.Invoke("0.5,0.25", {{"Content-Type", "text/csv"}}).status, 200);
}

TEST(XgboostServerEnvTest, SigtermExitsCleanly) {
  Dataset d = testing::MakeDataset(50, 2, 0, 4);
  Server server(testing::TrainModel("reg:squarederror", d, SavedFormat::kJson));
  server.process().Signal(SIGTERM);
  EXPECT_EQ(server.process().WaitForExit(), 0) << server.process().Output();
}

// Starts the binary on `dir` and expects it to exit 1 saying `message`.
void ExpectStartupFailure(const fs::path& dir, const std::string& message) {
  ChildProcess p(BinaryPath("INFERD_XGBOOST_BIN", INFERD_XGBOOST_BUILT_BIN), {"serve"},
                 {{"SM_MODEL_DIR", dir.string()}, {"SAGEMAKER_BIND_TO_PORT", "0"}});
  EXPECT_EQ(p.WaitForExit(), 1);
  EXPECT_THAT(p.Output(), HasSubstr(message));
  EXPECT_THAT(p.Output(), ::testing::Not(HasSubstr("listening on")));
}

TEST(XgboostServerEnvTest, PickledModelsExit1WithHowToResave) {
  TempDir dir;
  std::ofstream(dir.path() / "xgboost-model", std::ios::binary)
      << std::string("\x80\x04\x95\x22\x00\x00", 6) << "cxgboost.core\nBooster\n";
  ExpectStartupFailure(dir.path(),
                       "is a Python pickle; re-save it with booster.save_model('xgboost-model')");
}

TEST(XgboostServerEnvTest, MissingOrAmbiguousModelsExit1) {
  TempDir empty;
  ExpectStartupFailure(empty.path(), "No model file in");
  TempDir several;
  std::ofstream(several.path() / "a.json") << "{}";
  std::ofstream(several.path() / "b.json") << "{}";
  ExpectStartupFailure(several.path(), "Found 2 files");
  TempDir garbage;
  std::ofstream(garbage.path() / "xgboost-model") << "not a model";
  ExpectStartupFailure(garbage.path(), "Cannot load the model file");
}

TEST(XgboostServerEnvTest, ArgumentsOtherThanServeAreRefused) {
  ChildProcess p(BinaryPath("INFERD_XGBOOST_BIN", INFERD_XGBOOST_BUILT_BIN), {"train"}, {});
  EXPECT_EQ(p.WaitForExit(), 2);
  EXPECT_THAT(p.Output(), HasSubstr("usage: inferd-xgboost serve"));
}

}  // namespace
}  // namespace inferd::xgboost_server
