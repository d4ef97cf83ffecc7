#include "api/s3/checksums.h"

#include <openssl/evp.h>
#include <zlib.h>

#include <array>
#include <cassert>
#include <cctype>
#include <cstring>

#include "common/base64.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace inferd::api::s3 {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Slicing-by-8 tables of a reflected CRC (the form every CRC here uses).
template <typename T>
struct SliceTables {
  std::array<std::array<T, 256>, 8> t;
  explicit SliceTables(T poly) {
    for (unsigned i = 0; i < 256; ++i) {
      T c = static_cast<T>(i);
      for (int k = 0; k < 8; ++k) c = (c & 1) ? static_cast<T>((c >> 1) ^ poly) : (c >> 1);
      t[0][i] = c;
    }
    for (unsigned i = 0; i < 256; ++i) {
      for (int j = 1; j < 8; ++j) t[j][i] = (t[j - 1][i] >> 8) ^ t[0][t[j - 1][i] & 0xFF];
    }
  }
  // `crc` is the internal (pre-inverted) register.
  T Update(T crc, const unsigned char* p, size_t n) const {
    while (n >= 8) {
      uint64_t v;
      std::memcpy(&v, p, 8);  // little-endian hosts only (x86-64, aarch64)
      v ^= static_cast<uint64_t>(crc);
      crc = static_cast<T>(t[7][v & 0xFF] ^ t[6][(v >> 8) & 0xFF] ^ t[5][(v >> 16) & 0xFF] ^
                           t[4][(v >> 24) & 0xFF] ^ t[3][(v >> 32) & 0xFF] ^
                           t[2][(v >> 40) & 0xFF] ^ t[1][(v >> 48) & 0xFF] ^ t[0][v >> 56]);
      p += 8;
      n -= 8;
    }
    while (n--) crc = static_cast<T>((crc >> 8) ^ t[0][(crc ^ *p++) & 0xFF]);
    return crc;
  }
};

const SliceTables<uint32_t>& Crc32cTables() {
  static const SliceTables<uint32_t> kTables(0x82F63B78u);
  return kTables;
}

const SliceTables<uint64_t>& Crc64NvmeTables() {
  static const SliceTables<uint64_t> kTables(0x9A6C9329AC4BC9B5ull);
  return kTables;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t Crc32cSse42(uint32_t crc, const unsigned char* p,
                                                       size_t n) {
  uint64_t c = crc;
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    n -= 8;
  }
  auto c32 = static_cast<uint32_t>(c);
  while (n--) c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}

bool HasSse42() {
  static const bool kHas = __builtin_cpu_supports("sse4.2");
  return kHas;
}
#endif

std::string BigEndian(uint64_t v, size_t bytes) {
  std::string out(bytes, '\0');
  for (size_t i = 0; i < bytes; ++i) {
    out[bytes - 1 - i] = static_cast<char>(v & 0xFF);
    v >>= 8;
  }
  return out;
}

class Crc32Hasher final : public Hasher {
 public:
  void Update(const char* data, size_t n) override { crc_ = Crc32(crc_, data, n); }
  std::string Final() override { return BigEndian(crc_, 4); }

 private:
  uint32_t crc_ = 0;
};

class Crc32cHasher final : public Hasher {
 public:
  void Update(const char* data, size_t n) override { crc_ = Crc32c(crc_, data, n); }
  std::string Final() override { return BigEndian(crc_, 4); }

 private:
  uint32_t crc_ = 0;
};

class Crc64NvmeHasher final : public Hasher {
 public:
  void Update(const char* data, size_t n) override { crc_ = Crc64Nvme(crc_, data, n); }
  std::string Final() override { return BigEndian(crc_, 8); }

 private:
  uint64_t crc_ = 0;
};

class EvpHasher final : public Hasher {
 public:
  explicit EvpHasher(const EVP_MD* md) : ctx_(EVP_MD_CTX_new()) {
    int rc = EVP_DigestInit_ex(ctx_, md, nullptr);
    assert(ctx_ != nullptr && rc == 1);
    (void)rc;
  }
  ~EvpHasher() override { EVP_MD_CTX_free(ctx_); }
  EvpHasher(const EvpHasher&) = delete;
  EvpHasher& operator=(const EvpHasher&) = delete;

  void Update(const char* data, size_t n) override { EVP_DigestUpdate(ctx_, data, n); }
  std::string Final() override {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    return std::string(reinterpret_cast<const char*>(md), len);
  }

 private:
  EVP_MD_CTX* ctx_;
};

}  // namespace

std::string_view ChecksumName(ChecksumAlgorithm algorithm) {
  switch (algorithm) {
    case ChecksumAlgorithm::kCrc32:
      return "CRC32";
    case ChecksumAlgorithm::kCrc32c:
      return "CRC32C";
    case ChecksumAlgorithm::kCrc64Nvme:
      return "CRC64NVME";
    case ChecksumAlgorithm::kSha1:
      return "SHA1";
    case ChecksumAlgorithm::kSha256:
      return "SHA256";
  }
  return "?";
}

std::string ChecksumHeader(ChecksumAlgorithm algorithm) {
  return "x-amz-checksum-" + Lower(ChecksumName(algorithm));
}

std::optional<ChecksumAlgorithm> ParseChecksumName(std::string_view name) {
  for (auto a :
       {ChecksumAlgorithm::kCrc32, ChecksumAlgorithm::kCrc32c, ChecksumAlgorithm::kCrc64Nvme,
        ChecksumAlgorithm::kSha1, ChecksumAlgorithm::kSha256}) {
    if (Lower(name) == Lower(ChecksumName(a))) return a;
  }
  return std::nullopt;
}

std::optional<ChecksumAlgorithm> ChecksumFromHeader(std::string_view header_name) {
  constexpr std::string_view kPrefix = "x-amz-checksum-";
  std::string lower = Lower(header_name);
  if (lower.compare(0, kPrefix.size(), kPrefix) != 0) return std::nullopt;
  return ParseChecksumName(std::string_view(lower).substr(kPrefix.size()));
}

size_t ChecksumBytes(ChecksumAlgorithm algorithm) {
  switch (algorithm) {
    case ChecksumAlgorithm::kCrc32:
    case ChecksumAlgorithm::kCrc32c:
      return 4;
    case ChecksumAlgorithm::kCrc64Nvme:
      return 8;
    case ChecksumAlgorithm::kSha1:
      return 20;
    case ChecksumAlgorithm::kSha256:
      return 32;
  }
  return 0;
}

uint32_t Crc32(uint32_t crc, const void* data, size_t n) {
  return static_cast<uint32_t>(crc32_z(crc, static_cast<const Bytef*>(data), n));
}

uint32_t Crc32c(uint32_t crc, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
#if defined(__x86_64__)
  if (HasSse42()) return ~Crc32cSse42(~crc, p, n);
#endif
  return ~Crc32cTables().Update(~crc, p, n);
}

uint64_t Crc64Nvme(uint64_t crc, const void* data, size_t n) {
  return ~Crc64NvmeTables().Update(~crc, static_cast<const unsigned char*>(data), n);
}

std::unique_ptr<Hasher> MakeChecksumHasher(ChecksumAlgorithm algorithm) {
  switch (algorithm) {
    case ChecksumAlgorithm::kCrc32:
      return std::make_unique<Crc32Hasher>();
    case ChecksumAlgorithm::kCrc32c:
      return std::make_unique<Crc32cHasher>();
    case ChecksumAlgorithm::kCrc64Nvme:
      return std::make_unique<Crc64NvmeHasher>();
    case ChecksumAlgorithm::kSha1:
      return std::make_unique<EvpHasher>(EVP_sha1());
    case ChecksumAlgorithm::kSha256:
      return std::make_unique<EvpHasher>(EVP_sha256());
  }
  return nullptr;
}

std::unique_ptr<Hasher> MakeDigestHasher(DigestAlgorithm algorithm) {
  switch (algorithm) {
    case DigestAlgorithm::kMd5:
      return std::make_unique<EvpHasher>(EVP_md5());
    case DigestAlgorithm::kSha1:
      return std::make_unique<EvpHasher>(EVP_sha1());
    case DigestAlgorithm::kSha256:
      return std::make_unique<EvpHasher>(EVP_sha256());
  }
  return nullptr;
}

std::string Digest(DigestAlgorithm algorithm, std::string_view data) {
  auto h = MakeDigestHasher(algorithm);
  h->Update(data);
  return h->Final();
}

std::string ChecksumBase64(ChecksumAlgorithm algorithm, std::string_view data) {
  auto h = MakeChecksumHasher(algorithm);
  h->Update(data);
  return Base64Encode(h->Final());
}

}  // namespace inferd::api::s3
