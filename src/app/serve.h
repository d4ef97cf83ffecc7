// `inferd serve`: wires every component, serves until SIGTERM/SIGINT, stops gracefully.
#pragma once

#include "app/config.h"

namespace inferd::app {

// Returns the process exit code: 0 after a graceful stop, 2 for a configuration the server refuses
// (e.g. a non-loopback address without credentials), 1 when start-up fails.
int Serve(Config config);

}  // namespace inferd::app
