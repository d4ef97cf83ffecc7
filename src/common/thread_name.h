// SetThreadName: names the calling thread (Linux: 15 characters at most, longer names are cut)
// so `top -H`, `perf report --sort comm` and `perf stat --per-thread` tell inferd's threads apart.
#pragma once

#include <string_view>

namespace inferd {

void SetThreadName(std::string_view name);

}  // namespace inferd
