// `inferd logs ENDPOINT`: prints the logs of an endpoint's model-server instances (current and
// past ones still on disk) from the data dir. Works while the server runs (read-only).
#pragma once

#include <string>

namespace inferd::app {

struct LogsOptions {
  std::string data_dir = "./inferd-data";
  std::string endpoint;
  int tail = 0;  // 0 = whole logs; N = the last N lines of each
};

// Returns the process exit code (0, or 1 with a message on stderr).
int PrintLogs(const LogsOptions& options);

}  // namespace inferd::app
