#include "inferd-xgboost/test_models.h"

#include <xgboost/c_api.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>

namespace inferd::xgboost_server::testing {
namespace {

namespace fs = std::filesystem;

// A libxgboost failure ends the test (gtest reports the exception) or the tool.
void Check(int rc, const char* what) {
  if (rc != 0) throw std::runtime_error(std::string(what) + ": " + XGBGetLastError());
}

}  // namespace

Dataset MakeDataset(size_t rows, size_t cols, int classes, unsigned seed) {
  Dataset d;
  d.rows = rows;
  d.cols = cols;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_int_distribution<int> missing(0, 19);
  for (size_t r = 0; r < rows; ++r) {
    float score = 0;
    for (size_t c = 0; c < cols; ++c) {
      float v = u(rng);
      score += v * static_cast<float>(c + 1);
      d.x.push_back(missing(rng) == 0 ? std::numeric_limits<float>::quiet_NaN() : v);
    }
    if (classes == 2) {
      d.y.push_back(score > 0 ? 1.0f : 0.0f);
    } else if (classes > 2) {
      d.y.push_back(static_cast<float>(static_cast<int>(std::fabs(score) * 2) % classes));
    } else {
      d.y.push_back(score + 0.1f * u(rng));
    }
  }
  return d;
}

std::string TrainModel(const std::string& objective, const Dataset& d, SavedFormat format,
                       int num_class, const std::string& booster) {
  DMatrixHandle dm = nullptr;
  Check(XGDMatrixCreateFromMat(d.x.data(), d.rows, d.cols, std::nanf(""), &dm), "CreateFromMat");
  Check(XGDMatrixSetFloatInfo(dm, "label", d.y.data(), d.rows), "SetFloatInfo");
  BoosterHandle b = nullptr;
  Check(XGBoosterCreate(&dm, 1, &b), "BoosterCreate");
  Check(XGBoosterSetParam(b, "objective", objective.c_str()), "objective");
  Check(XGBoosterSetParam(b, "booster", booster.c_str()), "booster");
  Check(XGBoosterSetParam(b, "max_depth", "3"), "max_depth");
  Check(XGBoosterSetParam(b, "nthread", "1"), "nthread");
  Check(XGBoosterSetParam(b, "seed", "7"), "seed");
  if (num_class > 0) {
    Check(XGBoosterSetParam(b, "num_class", std::to_string(num_class).c_str()), "num_class");
  }
  for (int i = 0; i < 6; ++i) Check(XGBoosterUpdateOneIter(b, i, dm), "UpdateOneIter");

  std::random_device rd;
  fs::path dir = fs::temp_directory_path() / ("inferd-xgb-train-" + std::to_string(rd()));
  fs::create_directories(dir);
  fs::path file = dir / (format == SavedFormat::kJson  ? "model.json"
                         : format == SavedFormat::kUbj ? "model.ubj"
                                                       : "xgboost-model");
  Check(XGBoosterSaveModel(b, file.c_str()), "SaveModel");
  std::ifstream in(file, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  XGBoosterFree(b);
  XGDMatrixFree(dm);
  fs::remove_all(dir);
  return bytes.str();
}

std::vector<float> ReferencePredict(const std::string& model_bytes, const std::vector<float>& x,
                                    size_t rows, size_t cols, size_t* cols_out) {
  BoosterHandle b = nullptr;
  Check(XGBoosterCreate(nullptr, 0, &b), "BoosterCreate");
  Check(XGBoosterLoadModelFromBuffer(b, model_bytes.data(), model_bytes.size()), "Load");
  DMatrixHandle dm = nullptr;
  Check(XGDMatrixCreateFromMat(x.data(), rows, cols, std::nanf(""), &dm), "CreateFromMat");
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  const float* out = nullptr;
  Check(XGBoosterPredictFromDMatrix(
            b, dm,
            R"({"type": 0, "training": false, "iteration_begin": 0, "iteration_end": 0, )"
            R"("strict_shape": false})",
            &shape, &dim, &out),
        "Predict");
  size_t total = 1;
  for (bst_ulong i = 0; i < dim; ++i) total *= shape[i];
  std::vector<float> result(out, out + total);
  if (cols_out != nullptr) *cols_out = rows == 0 ? 1 : total / rows;
  XGDMatrixFree(dm);
  XGBoosterFree(b);
  return result;
}

std::vector<float> Rows(const Dataset& d, size_t begin, size_t end) {
  return std::vector<float>(d.x.begin() + static_cast<std::ptrdiff_t>(begin * d.cols),
                            d.x.begin() + static_cast<std::ptrdiff_t>(end * d.cols));
}

}  // namespace inferd::xgboost_server::testing
