// Model: one XGBoost booster loaded through libxgboost's C API, shared by the worker threads.
//
// Loading: the model directory's `xgboost-model`, else its single regular file whose name does
// not start with '.'; the bytes go to XGBoosterLoadModelFromBuffer, which reads XGBoost's binary,
// JSON and UBJ formats. A Python pickle (first byte 0x80) is refused with a message saying how
// to re-save it. The booster is set to nthread=1 (as the SageMaker container does): requests run
// in parallel on the worker pool instead.
//
// Thread safety: Predict() may be called from any number of threads. XGBoost ≥ 1.4 documents
// prediction as thread-safe for tree boosters (gbtree, dart; doc/prediction.rst "Thread
// Safety"); for other boosters (gblinear) Predict() serialises calls with a mutex.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "common/result.h"
#include "inferd-xgboost/encode.h"
#include "inferd-xgboost/payload.h"

namespace inferd::xgboost_server {

class Model {
 public:
  // Errors (Errc::kValidation) say what is wrong with the directory or the file and what to do.
  static Result<std::unique_ptr<Model>> LoadFromDir(const std::filesystem::path& dir);
  static Result<std::unique_ptr<Model>> LoadFromBytes(const std::string& bytes,
                                                      const std::string& source);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  size_t num_features() const { return num_features_; }
  const std::string& objective() const { return objective_; }
  const std::string& booster_kind() const { return booster_kind_; }  // gbtree, dart, gblinear
  const std::string& source() const { return source_; }

  // Checks the matrix against the model (dense: exactly num_features() columns; sparse: no
  // column beyond the model's) and predicts. Errors are Errc::kValidation; their messages are
  // what the container puts after "Unable to evaluate payload provided: ".
  Result<Predictions> Predict(const Matrix& m, const std::string& input_name) const;

 private:
  Model() = default;

  void* booster_ = nullptr;  // BoosterHandle
  size_t num_features_ = 0;
  std::string objective_;
  std::string booster_kind_;
  std::string source_;
  bool thread_safe_ = false;
  mutable std::mutex mu_;  // held around predictions when !thread_safe_
};

// The file LoadFromDir reads: `xgboost-model` if present, else the only regular non-dot file.
Result<std::filesystem::path> FindModelFile(const std::filesystem::path& dir);

}  // namespace inferd::xgboost_server
