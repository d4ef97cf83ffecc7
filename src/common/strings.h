// Small string helpers shared across components (ASCII only; no locale).
#pragma once

#include <string>
#include <string_view>

namespace inferd {

// ASCII lower case (bytes ≥ 0x80 unchanged).
std::string AsciiLower(std::string_view s);
// Without leading/trailing spaces and tabs.
std::string_view TrimSpaces(std::string_view s);
// Lower-case hex of the bytes.
std::string HexEncode(std::string_view bytes);
// HexEncode into `out`, which has room for 2 × bytes.size() characters (no allocation).
void HexEncodeTo(std::string_view bytes, char* out);

}  // namespace inferd
