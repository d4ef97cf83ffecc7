// Identifiers: random UUIDs (v4) for request ids, inference ids and output object names.
#pragma once

#include <string>

namespace inferd {

// A random RFC 4122 version-4 UUID, lowercase, e.g. "2f4dcf85-01b8-418c-8c93-2b30fcdd1ab8".
// Thread-safe; uses a per-thread generator seeded from the OS.
std::string NewUuid();

}  // namespace inferd
