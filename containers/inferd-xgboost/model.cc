#include "inferd-xgboost/model.h"

#include <xgboost/c_api.h>

#include <algorithm>
#include <boost/json.hpp>
#include <fstream>
#include <limits>
#include <sstream>
#include <system_error>
#include <vector>

namespace inferd::xgboost_server {
namespace {

namespace fs = std::filesystem;

std::string LastXgboostError() {
  std::string msg = XGBGetLastError();
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  return msg;
}

// RAII for a DMatrixHandle.
class DMatrix {
 public:
  DMatrix() = default;
  ~DMatrix() {
    if (h_ != nullptr) XGDMatrixFree(h_);
  }
  DMatrix(const DMatrix&) = delete;
  DMatrix& operator=(const DMatrix&) = delete;
  DMatrixHandle* out() { return &h_; }
  DMatrixHandle get() const { return h_; }

 private:
  DMatrixHandle h_ = nullptr;
};

std::string ConfigString(const boost::json::value* v) {
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

}  // namespace

Result<fs::path> FindModelFile(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return Error(Errc::kValidation,
                 "The model directory " + dir.string() +
                     " does not exist. Set SM_MODEL_DIR to the directory holding the model file "
                     "(xgboost-model).");
  }
  if (fs::is_regular_file(dir / "xgboost-model", ec)) return dir / "xgboost-model";
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.' || !entry.is_regular_file(ec)) continue;
    names.push_back(name);
  }
  if (ec) return Error(Errc::kValidation, "Cannot list " + dir.string() + ": " + ec.message());
  std::sort(names.begin(), names.end());
  if (names.size() == 1) return dir / names[0];
  if (names.empty()) {
    return Error(Errc::kValidation,
                 "No model file in " + dir.string() +
                     ". Put the model, saved with booster.save_model(), in model.tar.gz as "
                     "xgboost-model.");
  }
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  return Error(Errc::kValidation, "Found " + std::to_string(names.size()) + " files in " +
                                      dir.string() + " (" + list +
                                      ") and no xgboost-model. inferd-xgboost serves one model: "
                                      "name its file xgboost-model (ensembles of several model "
                                      "files are not supported).");
}

Result<std::unique_ptr<Model>> Model::LoadFromDir(const fs::path& dir) {
  auto file = FindModelFile(dir);
  if (!file.ok()) return file.error();
  std::ifstream in(*file, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (!in) return Error(Errc::kValidation, "Cannot read the model file " + file->string() + ".");
  return LoadFromBytes(bytes.str(), file->string());
}

Result<std::unique_ptr<Model>> Model::LoadFromBytes(const std::string& bytes,
                                                    const std::string& source) {
  if (bytes.empty()) {
    return Error(Errc::kValidation, "The model file " + source + " is empty.");
  }
  if (static_cast<unsigned char>(bytes[0]) == 0x80) {
    return Error(Errc::kValidation,
                 source +
                     " is a Python pickle; re-save it with booster.save_model('xgboost-model') "
                     "(XGBoost binary/JSON/UBJ format) and package that file as xgboost-model in "
                     "model.tar.gz. inferd-xgboost does not unpickle models (that would run "
                     "arbitrary Python code). In Python: booster = pickle.load(open(path, 'rb')); "
                     "booster.save_model('xgboost-model') (for a scikit-learn model: "
                     "model.get_booster().save_model('xgboost-model')). Models trained by the "
                     "SageMaker XGBoost algorithm 1.3-1 or later are saved that way already.");
  }
  std::unique_ptr<Model> model(new Model());
  model->source_ = source;
  BoosterHandle booster = nullptr;
  if (XGBoosterCreate(nullptr, 0, &booster) != 0) {
    return Error(Errc::kInternal, "XGBoosterCreate failed: " + LastXgboostError());
  }
  model->booster_ = booster;
  if (XGBoosterLoadModelFromBuffer(booster, bytes.data(), bytes.size()) != 0) {
    return Error(
        Errc::kValidation,
        "Cannot load the model file " + source + ": " + LastXgboostError() +
            ". inferd-xgboost reads models saved with booster.save_model() in XGBoost's "
            "binary, JSON or UBJ format (libxgboost " +
            [] {
              int major = 0, minor = 0, patch = 0;
              XGBoostVersion(&major, &minor, &patch);
              return std::to_string(major) + "." + std::to_string(minor) + "." +
                     std::to_string(patch);
            }() +
            ").");
  }
  if (XGBoosterSetParam(booster, "nthread", "1") != 0) {
    return Error(Errc::kInternal, "Cannot set nthread=1: " + LastXgboostError());
  }
  bst_ulong features = 0;
  if (XGBoosterGetNumFeature(booster, &features) != 0) {
    return Error(Errc::kValidation, "Cannot read the model's number of features from " + source +
                                        ": " + LastXgboostError());
  }
  model->num_features_ = static_cast<size_t>(features);
  bst_ulong len = 0;
  const char* config = nullptr;
  if (XGBoosterSaveJsonConfig(booster, &len, &config) == 0) {
    boost::system::error_code ec;
    auto doc = boost::json::parse(std::string_view(config, len), ec);
    if (!ec && doc.is_object()) {
      const auto* learner = doc.get_object().if_contains("learner");
      if (learner != nullptr && learner->is_object()) {
        const auto& l = learner->get_object();
        if (const auto* obj = l.if_contains("objective"); obj && obj->is_object()) {
          model->objective_ = ConfigString(obj->get_object().if_contains("name"));
        }
        if (const auto* gb = l.if_contains("gradient_booster"); gb && gb->is_object()) {
          model->booster_kind_ = ConfigString(gb->get_object().if_contains("name"));
        }
      }
    }
  }
  model->thread_safe_ = model->booster_kind_ == "gbtree" || model->booster_kind_ == "dart";
  // One prediction now: XGBoost configures the booster lazily on first use, and a model that
  // cannot predict should fail here rather than on every request.
  Matrix probe;
  probe.rows = model->num_features_ > 0 ? 1 : 0;
  probe.cols = model->num_features_;
  probe.dense.assign(probe.cols, std::numeric_limits<float>::quiet_NaN());
  if (auto warm = model->Predict(probe, "probe"); !warm.ok()) {
    return Error(Errc::kValidation,
                 "The model " + source + " loaded but cannot predict: " + warm.error().message);
  }
  return model;
}

Model::~Model() {
  if (booster_ != nullptr) XGBoosterFree(booster_);
}

Result<Predictions> Model::Predict(const Matrix& m, const std::string& input_name) const {
  if (!m.sparse && m.rows > 0 && m.cols != num_features_) {
    return Error(Errc::kValidation, "Feature size of " + input_name + " inference data " +
                                        std::to_string(m.cols) +
                                        " is not consistent with feature size of trained model " +
                                        std::to_string(num_features_) + ".");
  }
  if (m.sparse && m.cols > num_features_) {
    return Error(Errc::kValidation, "Feature size of " + input_name + " inference data " +
                                        std::to_string(m.cols) +
                                        " is larger than feature size of trained model " +
                                        std::to_string(num_features_) + ".");
  }
  Predictions out;
  out.rows = m.rows;
  if (m.rows == 0) return out;

  DMatrix d;
  int rc = 0;
  if (m.sparse) {
    rc = XGDMatrixCreateFromCSREx(m.indptr.data(), m.indices.data(), m.values.data(),
                                  m.indptr.size(), m.values.size(), num_features_, d.out());
  } else {
    rc = XGDMatrixCreateFromMat_omp(m.dense.data(), m.rows, m.cols,
                                    std::numeric_limits<float>::quiet_NaN(), d.out(), 1);
  }
  if (rc != 0) return Error(Errc::kValidation, LastXgboostError());

  static constexpr char kConfig[] =
      R"({"type": 0, "training": false, "iteration_begin": 0, "iteration_end": 0,)"
      R"( "strict_shape": false})";
  std::unique_lock lock(mu_, std::defer_lock);
  if (!thread_safe_) lock.lock();
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  const float* result = nullptr;
  // The result lives in a thread-local buffer until this thread's next XGBoost call.
  if (XGBoosterPredictFromDMatrix(booster_, d.get(), kConfig, &shape, &dim, &result) != 0) {
    return Error(Errc::kValidation, LastXgboostError());
  }
  size_t total = 1;
  for (bst_ulong i = 0; i < dim; ++i) total *= static_cast<size_t>(shape[i]);
  out.per_row_vector = dim >= 2;
  out.cols = m.rows == 0 ? 1 : total / m.rows;
  out.values.assign(result, result + total);
  return out;
}

}  // namespace inferd::xgboost_server
