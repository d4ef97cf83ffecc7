// Model artifacts: what a ContainerDefinition names as its model data, fetched from the
// ObjectStore (through the StoreRouter: embedded or remote S3) once per version into
// <data-dir>/models/<sha256>/, shared read-only by every instance of the model:
//   ModelDataUrl, or ModelDataSource.S3DataSource S3Object + Gzip → a .tar.gz, extracted;
//   S3DataSource S3Prefix + None → every object under the prefix, keeping the key's path below
//     the prefix (keys that would escape the directory are refused);
//   S3DataSource S3Object + None → the one object, as a file named like the key's last part.
// A download (and extraction) taking longer than its timeout (the variant's
// ModelDataDownloadTimeoutInSeconds) fails with a reason naming it; a read already waiting on
// the network ends by the store's own timeouts.
//
// Extraction refuses what could escape or exhaust the directory: absolute entry paths, `..`
// components, symlinks or hardlinks pointing outside, device/FIFO entries, and archive bombs
// (more than `max_bytes` extracted, or more than `max_ratio` times the compressed size).
// A refused or broken archive leaves nothing behind. Blocking (network and disk): call from the
// reconciler's thread or the blocking pool. ArtifactCache is thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>

#include "common/clock.h"
#include "common/result.h"
#include "http/body_pipe.h"
#include "store/object_store.h"

namespace inferd::fleet {

struct ExtractLimits {
  uint64_t max_bytes = 10ull << 30;
  double max_ratio = 1000;
};

// Extracts the gzip'd tar read from `source` into `dest` (which must not exist; created).
// kValidation with the reason when the archive is malformed or refused; kInternal for local I/O.
Status ExtractTarGz(http::ByteSource& source, const std::filesystem::path& dest,
                    const ExtractLimits& limits);

// Where a container's model data comes from.
struct ModelData {
  enum class Kind { kTarGz, kPrefix, kObject };
  Kind kind = Kind::kTarGz;
  std::string uri;  // s3://bucket/key (kPrefix: s3://bucket/prefix/)
};

class ArtifactCache {
 public:
  ArtifactCache(store::ObjectStore& store, std::filesystem::path models_dir, ExtractLimits limits,
                const Clock& clock = SystemClock::Instance());

  // The directory holding `data`, fetching it on first use (and again when its ETags changed).
  // Errors carry the user-facing reason: "model artifact s3://b/k could not be fetched: …",
  // "model artifact s3://b/k is not a valid .tar.gz: …", "model artifact s3://b/p/ was not
  // downloaded within ModelDataDownloadTimeoutInSeconds (N s)", "model data s3://b/p/ holds
  // key … that would escape the model directory".
  Result<std::filesystem::path> Get(const ModelData& data, std::chrono::milliseconds timeout);
  Result<std::filesystem::path> Get(const std::string& model_data_url) {
    return Get(ModelData{ModelData::Kind::kTarGz, model_data_url}, std::chrono::hours(1));
  }

 private:
  Result<std::filesystem::path> GetTarGz(const ModelData& data,
                                         std::chrono::steady_clock::time_point deadline,
                                         const std::string& timeout_reason);
  Result<std::filesystem::path> GetFiles(const ModelData& data,
                                         std::chrono::steady_clock::time_point deadline,
                                         const std::string& timeout_reason);

  store::ObjectStore& store_;
  std::filesystem::path models_dir_;
  ExtractLimits limits_;
  const Clock& clock_;
  std::mutex mu_;  // one extraction at a time (a model is extracted once)
};

}  // namespace inferd::fleet
