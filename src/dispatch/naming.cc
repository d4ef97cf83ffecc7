#include "dispatch/naming.h"

namespace inferd::dispatch {

std::string JoinPath(std::string_view base, std::string_view part) {
  while (!part.empty() && part.front() == '/') part.remove_prefix(1);
  if (part.empty()) return std::string(base);
  // Keep the "//" of "s3://": only strip slashes after the scheme's authority starts.
  const size_t scheme = base.find("://");
  const size_t keep = scheme == std::string_view::npos ? 0 : scheme + 3;
  while (base.size() > keep && base.back() == '/') base.remove_suffix(1);
  std::string out(base);
  out += '/';
  out += part;
  return out;
}

Result<ResultLocations> MakeLocations(const AsyncConfig& config, std::string_view endpoint,
                                      std::string_view output_path_extension,
                                      std::string_view filename, std::string_view output_id) {
  if (config.s3_output_path.empty()) {
    return Error(Errc::kValidation,
                 "Endpoint " + std::string(endpoint) +
                     " has no S3OutputPath in its AsyncInferenceConfig.OutputConfig, so inferd "
                     "has nowhere to write the output. Update the endpoint with a configuration "
                     "that sets S3OutputPath.");
  }
  ResultLocations out;
  std::string dir = JoinPath(config.s3_output_path, output_path_extension);
  out.output =
      filename.empty() ? JoinPath(dir, std::string(output_id) + ".out") : JoinPath(dir, filename);
  if (!config.s3_failure_path.empty()) {
    out.failure = JoinPath(config.s3_failure_path, std::string(output_id) + "-error.out");
  }
  return out;
}

}  // namespace inferd::dispatch
