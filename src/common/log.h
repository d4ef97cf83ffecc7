// Logging: spdlog, configured once by app/. Components log through spdlog's default logger.
#pragma once

#include <string_view>

#include "common/result.h"

namespace inferd {

// Sets the level of the default logger: trace, debug, info, warn, error, critical, off.
Status InitLogging(std::string_view level);

}  // namespace inferd
