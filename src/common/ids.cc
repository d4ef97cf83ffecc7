#include "common/ids.h"

#include <chrono>
#include <cstdint>
#include <random>

namespace inferd {

namespace {

std::mt19937_64& Generator() {
  thread_local std::mt19937_64 gen{[] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }()};
  return gen;
}

std::string Format(uint64_t hi, uint64_t lo) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(36, '-');
  int pos = 0;
  auto put = [&](uint64_t v) {
    for (int i = 0; i < 16; ++i) {
      if (pos == 8 || pos == 13 || pos == 18 || pos == 23) ++pos;
      out[pos++] = kHex[(v >> (60 - 4 * i)) & 0xF];
    }
  };
  put(hi);
  put(lo);
  return out;
}

constexpr uint64_t kVariant = 0x8000000000000000ULL;  // variant 10
constexpr uint64_t kVariantMask = 0x3FFFFFFFFFFFFFFFULL;

}  // namespace

std::string NewUuid() {
  auto& gen = Generator();
  uint64_t hi = gen(), lo = gen();
  hi = (hi & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;  // version 4
  return Format(hi, (lo & kVariantMask) | kVariant);
}

std::string UuidV8(uint64_t hi, uint64_t lo) {
  hi = (hi & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000008000ULL;  // version 8
  return Format(hi, (lo & kVariantMask) | kVariant);
}

std::string NewTimeOrderedUuid() {
  auto& gen = Generator();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  const uint64_t rand_a = gen() & 0xFFF;
  const uint64_t hi = (static_cast<uint64_t>(ms) << 16) | 0x7000 | rand_a;  // version 7
  return Format(hi, (gen() & kVariantMask) | kVariant);
}

}  // namespace inferd
