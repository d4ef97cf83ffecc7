#include "inferd-xgboost/model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <thread>

#include "inferd-xgboost/test_models.h"
#include "testing/child_process.h"

namespace inferd::xgboost_server {
namespace {

namespace fs = std::filesystem;
using containers::testing::TempDir;
using testing::Dataset;
using ::testing::HasSubstr;
using testing::SavedFormat;

void Write(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

std::unique_ptr<Model> Load(const std::string& bytes) {
  auto m = Model::LoadFromBytes(bytes, "test-model");
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
  return m.ok() ? std::move(m).value() : nullptr;
}

Matrix Dense(const std::vector<float>& x, size_t rows, size_t cols) {
  Matrix m;
  m.rows = rows;
  m.cols = cols;
  m.dense = x;
  return m;
}

// The same rows as CSR, leaving out missing values.
Matrix Csr(const std::vector<float>& x, size_t rows, size_t cols) {
  Matrix m;
  m.rows = rows;
  m.cols = cols;
  m.sparse = true;
  m.indptr.push_back(0);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c = 0; c < cols; ++c) {
      if (std::isnan(x[r * cols + c])) continue;
      m.indices.push_back(static_cast<unsigned>(c));
      m.values.push_back(x[r * cols + c]);
    }
    m.indptr.push_back(m.indices.size());
  }
  return m;
}

class ModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = new Dataset(testing::MakeDataset(200, 5, 2, 11));
    logistic_ =
        new std::string(testing::TrainModel("binary:logistic", *data_, SavedFormat::kBinary));
  }
  static void TearDownTestSuite() {
    delete data_;
    delete logistic_;
  }
  static Dataset* data_;
  static std::string* logistic_;
};
Dataset* ModelTest::data_ = nullptr;
std::string* ModelTest::logistic_ = nullptr;

TEST_F(ModelTest, ReadsTheModelsProperties) {
  auto model = Load(*logistic_);
  ASSERT_TRUE(model);
  EXPECT_EQ(model->num_features(), 5u);
  EXPECT_EQ(model->objective(), "binary:logistic");
  EXPECT_EQ(model->booster_kind(), "gbtree");
}

TEST_F(ModelTest, DensePredictionsEqualLibxgboosts) {
  auto model = Load(*logistic_);
  ASSERT_TRUE(model);
  auto x = testing::Rows(*data_, 0, 50);
  auto expected = testing::ReferencePredict(*logistic_, x, 50, 5);
  auto got = model->Predict(Dense(x, 50, 5), "csv");
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->rows, 50u);
  EXPECT_FALSE(got->per_row_vector);
  EXPECT_EQ(got->values, expected);
}

TEST_F(ModelTest, SparsePredictionsEqualDenseOnes) {
  auto model = Load(*logistic_);
  ASSERT_TRUE(model);
  auto x = testing::Rows(*data_, 0, 50);
  auto expected = testing::ReferencePredict(*logistic_, x, 50, 5);
  auto got = model->Predict(Csr(x, 50, 5), "libsvm");
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->values, expected);
}

TEST_F(ModelTest, EveryFormatLoadsTheSameModel) {
  Dataset d = testing::MakeDataset(150, 4, 3, 5);
  auto x = testing::Rows(d, 0, 20);
  std::vector<float> first;
  for (auto f : {SavedFormat::kBinary, SavedFormat::kJson, SavedFormat::kUbj}) {
    std::string bytes = testing::TrainModel("multi:softprob", d, f, 3);
    auto model = Load(bytes);
    ASSERT_TRUE(model);
    auto got = model->Predict(Dense(x, 20, 4), "csv");
    ASSERT_TRUE(got.ok()) << got.error().message;
    EXPECT_TRUE(got->per_row_vector);
    EXPECT_EQ(got->cols, 3u);
    EXPECT_EQ(got->values, testing::ReferencePredict(bytes, x, 20, 4));
    if (first.empty()) first = got->values;
    EXPECT_EQ(got->values, first);
  }
}

TEST_F(ModelTest, FeatureCountsAreChecked) {
  auto model = Load(*logistic_);
  ASSERT_TRUE(model);
  auto narrow = model->Predict(Dense(std::vector<float>(4, 1.0f), 1, 4), "csv");
  ASSERT_FALSE(narrow.ok());
  EXPECT_EQ(narrow.error().message,
            "Feature size of csv inference data 4 is not consistent with feature size of "
            "trained model 5.");
  Matrix wide = Csr(std::vector<float>(6, 1.0f), 1, 6);
  auto too_wide = model->Predict(wide, "libsvm");
  ASSERT_FALSE(too_wide.ok());
  EXPECT_THAT(too_wide.error().message,
              HasSubstr("Feature size of libsvm inference data 6 is larger than feature size of "
                        "trained model 5."));
  EXPECT_TRUE(model->Predict(Csr(std::vector<float>(3, 1.0f), 1, 3), "libsvm").ok());
  auto none = model->Predict(Matrix{}, "json");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->rows, 0u);
}

TEST_F(ModelTest, ConcurrentPredictionsAreCorrect) {
  auto model = Load(*logistic_);
  ASSERT_TRUE(model);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        size_t begin = static_cast<size_t>((t * 20 + i) % 190);
        auto x = testing::Rows(*data_, begin, begin + 10);
        auto got = model->Predict(Dense(x, 10, 5), "csv");
        if (!got.ok() || got->values != testing::ReferencePredict(*logistic_, x, 10, 5)) {
          ++mismatches;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST_F(ModelTest, LinearBoostersAreServedToo) {
  Dataset d = testing::MakeDataset(100, 3, 0, 3);
  std::string bytes = testing::TrainModel("reg:squarederror", d, SavedFormat::kJson, 0, "gblinear");
  auto model = Load(bytes);
  ASSERT_TRUE(model);
  EXPECT_EQ(model->booster_kind(), "gblinear");
  std::vector<float> x = {0.5f, -0.5f, 0.25f};
  auto got = model->Predict(Dense(x, 1, 3), "csv");
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->values, testing::ReferencePredict(bytes, x, 1, 3));
}

TEST(ModelLoadTest, PicklesAreRefusedWithAFix) {
  auto m = Model::LoadFromBytes(std::string("\x80\x04\x95\x10\x00", 5) + "xgboost.core", "/m/x");
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.error().message,
              HasSubstr("/m/x is a Python pickle; re-save it with "
                        "booster.save_model('xgboost-model') (XGBoost binary/JSON/UBJ format)"));
}

TEST(ModelLoadTest, GarbageAndEmptyFilesAreRefused) {
  auto garbage = Model::LoadFromBytes("this is not a model", "/m/g");
  ASSERT_FALSE(garbage.ok());
  EXPECT_THAT(garbage.error().message, HasSubstr("Cannot load the model file /m/g"));
  auto empty = Model::LoadFromBytes("", "/m/e");
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.error().message, HasSubstr("/m/e is empty"));
}

TEST(FindModelFileTest, PrefersXgboostModel) {
  TempDir dir;
  Write(dir.path() / "other", "x");
  Write(dir.path() / "xgboost-model", "x");
  EXPECT_EQ(FindModelFile(dir.path())->filename(), "xgboost-model");
}

TEST(FindModelFileTest, TakesTheOnlyFileIgnoringDotFilesAndDirectories) {
  TempDir dir;
  Write(dir.path() / ".DS_Store", "x");
  fs::create_directory(dir.path() / "code");
  Write(dir.path() / "model.json", "x");
  EXPECT_EQ(FindModelFile(dir.path())->filename(), "model.json");
}

TEST(FindModelFileTest, NoneOrSeveralFilesAreErrors) {
  TempDir dir;
  auto none = FindModelFile(dir.path());
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(none.error().message, HasSubstr("No model file in"));
  Write(dir.path() / "a.json", "x");
  Write(dir.path() / "b.json", "x");
  auto several = FindModelFile(dir.path());
  ASSERT_FALSE(several.ok());
  EXPECT_THAT(several.error().message, HasSubstr("Found 2 files"));
  EXPECT_THAT(several.error().message, HasSubstr("(a.json, b.json)"));
  auto missing = FindModelFile(dir.path() / "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.error().message, HasSubstr("does not exist"));
}

}  // namespace
}  // namespace inferd::xgboost_server
