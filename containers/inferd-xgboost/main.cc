// inferd-xgboost: a SageMaker-compatible XGBoost model server on libxgboost (see README.md).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <iostream>
#include <string>

#include "common/blocking_pool.h"
#include "inferd-xgboost/handler.h"
#include "inferd-xgboost/model.h"
#include "model_server/model_server.h"

namespace {

using namespace inferd;
using namespace inferd::xgboost_server;
using containers::GetEnv;

constexpr char kName[] = "inferd-xgboost";
constexpr uint64_t kMiB = 1024 * 1024;

int Fail(const std::string& message) {
  std::cerr << kName << ": " << message << "\n";
  return 1;
}

// The request body limit. SAGEMAKER_MAX_REQUEST_SIZE (the newer, MMS-based containers; no cap
// here beyond 1 GiB, since bodies are buffered) wins; else MAX_CONTENT_LENGTH (the Flask
// algorithm-mode server: default 6 MiB, capped at 20 MiB, spec §0.11 and §7.2).
Result<size_t> MaxBodyBytes() {
  auto mms = containers::GetEnvUint("SAGEMAKER_MAX_REQUEST_SIZE", 1, 1024 * kMiB);
  if (!mms.ok()) return mms.error();
  if (*mms) return static_cast<size_t>(**mms);
  auto flask = containers::GetEnvUint("MAX_CONTENT_LENGTH", 1, UINT64_MAX);
  if (!flask.ok()) return flask.error();
  if (*flask) return static_cast<size_t>(std::min<uint64_t>(**flask, 20 * kMiB));
  return static_cast<size_t>(6 * kMiB);
}

Result<HandlerOptions> ReadHandlerOptions() {
  HandlerOptions o;
  if (auto accept = GetEnv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT")) {
    auto type = OutputTypeFor(ParseMediaType(*accept).type);
    if (!type) {
      return Error(Errc::kValidation, "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=\"" + *accept +
                                          "\" is not supported; use text/csv, application/json "
                                          "or application/jsonlines.");
    }
    o.default_accept = *type;
  }
  // The container tests `if SAGEMAKER_BATCH:`, so any non-empty value turns batch output on.
  o.batch = GetEnv("SAGEMAKER_BATCH").has_value();
  if (auto indexing = GetEnv("INFERD_LIBSVM_INDEXING")) {
    std::string v = *indexing;
    std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
    if (v == "auto") {
      o.libsvm_indexing = LibsvmIndexing::kAuto;
    } else if (v == "zero" || v == "0") {
      o.libsvm_indexing = LibsvmIndexing::kZeroBased;
    } else if (v == "one" || v == "1") {
      o.libsvm_indexing = LibsvmIndexing::kOneBased;
    } else {
      return Error(Errc::kValidation,
                   "INFERD_LIBSVM_INDEXING=\"" + *indexing + "\" is not auto, zero or one.");
    }
  }
  auto limit = MaxBodyBytes();
  if (!limit.ok()) return limit.error();
  o.max_payload_bytes = *limit;
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  int exit_code = 0;
  if (!containers::WantsServe(
          argc, argv, kName,
          "Serves the XGBoost model in $SM_MODEL_DIR (default /opt/ml/model) with the SageMaker\n"
          "hosting contract: GET /ping, POST /invocations on $SAGEMAKER_BIND_TO_PORT (8080).\n"
          "See containers/inferd-xgboost/README.md for the environment variables.",
          &exit_code)) {
    return exit_code;
  }
  sigset_t signals = containers::BlockTerminationSignals();
  if (auto st = containers::InitModelServerLogging("info"); !st.ok()) {
    return Fail(st.error().message);
  }
  auto env = containers::ReadModelServerEnv();
  if (!env.ok()) return Fail(env.error().message);
  auto options = ReadHandlerOptions();
  if (!options.ok()) return Fail(options.error().message);
  options->workers = env->workers;
  if (GetEnv("SAGEMAKER_INFERENCE_OUTPUT")) {
    spdlog::warn(
        "SAGEMAKER_INFERENCE_OUTPUT (selectable inference output) is not supported; "
        "answering with scores.");
  }

  auto model = Model::LoadFromDir(env->model_dir);
  if (!model.ok()) return Fail(model.error().message);
  spdlog::info("loaded {}: {} features, objective {}, booster {}", (*model)->source(),
               (*model)->num_features(), (*model)->objective(), (*model)->booster_kind());

  BlockingPool pool(env->workers);
  XgboostHandler handler(**model, pool, *options);
  containers::RunOptions run;
  run.name = kName;
  run.server.host = env->host;
  run.server.port = env->port;
  run.server.max_body_bytes = options->max_payload_bytes;
  return containers::RunModelServer(run, handler, signals, {}, [&pool] { pool.Stop(); });
}
