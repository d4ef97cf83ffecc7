// Model artifacts: a ModelDataUrl's .tar.gz fetched from the ObjectStore and extracted once per
// (url, ETag) into <data-dir>/models/<sha256>/, shared read-only by every instance of the model.
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

class ArtifactCache {
 public:
  ArtifactCache(store::ObjectStore& store, std::filesystem::path models_dir, ExtractLimits limits);

  // The extracted directory of `model_data_url`, fetching and extracting it on first use. Errors
  // carry the user-facing reason: "model artifact s3://b/k could not be fetched: …" or
  // "model artifact s3://b/k is not a valid .tar.gz: …".
  Result<std::filesystem::path> Get(const std::string& model_data_url);

 private:
  store::ObjectStore& store_;
  std::filesystem::path models_dir_;
  ExtractLimits limits_;
  std::mutex mu_;  // one extraction at a time (a model is extracted once)
};

}  // namespace inferd::fleet
