// Identifiers: random UUIDs (v4) for request ids, inference ids and output object names; derived
// ones (v8) for ids that must come out the same from the same content.
#pragma once

#include <cstdint>
#include <string>

namespace inferd {

// A random RFC 4122 version-4 UUID, lowercase, e.g. "2f4dcf85-01b8-418c-8c93-2b30fcdd1ab8".
// Thread-safe; uses a per-thread generator seeded from the OS.
std::string NewUuid();

// A time-ordered RFC 9562 version-7 UUID: the first 48 bits are the Unix time in milliseconds,
// the other 74 free bits random (same generator), e.g. "019a8b3c-5d2e-7f10-9a4b-1c2d3e4f5a6b".
// Ids made in later milliseconds sort after earlier ones as strings, so keys named by them land
// next to each other in an index (the output objects of asynchronous invocations) instead of on
// random pages.
std::string NewTimeOrderedUuid();

// An RFC 9562 version-8 (custom) UUID of the given bits: the version and variant bits are set
// over them, the other 122 kept. For ids derived from content (e.g. a hash), the same bits
// always giving the same id.
std::string UuidV8(uint64_t hi, uint64_t lo);

}  // namespace inferd
