// Test fixtures: small XGBoost models trained in the test through libxgboost's C API, and
// libxgboost's own predictions (XGBoosterPredictFromDMatrix) to compare inferd-xgboost against.
// A libxgboost failure throws std::runtime_error (gtest reports it as the test's failure). Used
// by xgboost_serving_test and by the make-xgboost-model tool (end-to-end tests).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace inferd::xgboost_server::testing {

// A deterministic dataset: `cols` features (about 5% missing, as NaN) and labels for the
// objective: 0/1 for binary, 0..classes-1 for multi, a real value otherwise.
struct Dataset {
  size_t rows = 0;
  size_t cols = 0;
  std::vector<float> x;  // rows * cols, row-major
  std::vector<float> y;
};
Dataset MakeDataset(size_t rows, size_t cols, int classes, unsigned seed);

enum class SavedFormat { kBinary, kJson, kUbj };

// Trains a few rounds of `objective` (num_class for multi:*) and returns the saved model file:
// XGBoosterSaveModel to a path without extension (binary), ".json" or ".ubj".
std::string TrainModel(const std::string& objective, const Dataset& d, SavedFormat format,
                       int num_class = 0, const std::string& booster = "gbtree");

// libxgboost's own predictions for a dense matrix (NaN = missing); `cols_out` receives the
// number of values per row (num_class for multi:softprob, else 1).
std::vector<float> ReferencePredict(const std::string& model_bytes, const std::vector<float>& x,
                                    size_t rows, size_t cols, size_t* cols_out = nullptr);

// The row-major block of rows [begin, end).
std::vector<float> Rows(const Dataset& d, size_t begin, size_t end);

}  // namespace inferd::xgboost_server::testing
