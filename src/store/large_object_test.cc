// Large objects stream: a 200 MB put and get keep the process's resident memory flat.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <fstream>
#include <string>

#include "store/filesystem_store.h"
#include "store/store_test_util.h"

namespace inferd::store {
namespace {

using testing::PatternSource;
using testing::StoreFixture;

using testing::RssKiB;

class LargeObjectTest : public StoreFixture {};

TEST_F(LargeObjectTest, TwoHundredMegabytesStreamWithFlatMemory) {
  constexpr uint64_t kSize = 200ull * 1024 * 1024;
  const long before = RssKiB();
  ASSERT_GT(before, 0);

  PatternSource src(kSize);
  auto put = store_->Put("bkt", "big", {}, src);
  ASSERT_TRUE(put.ok()) << put.error().message;
  EXPECT_EQ(put->size, kSize);

  auto get = store_->Get("bkt", "big");
  ASSERT_TRUE(get.ok());
  EVP_MD_CTX* md5 = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md5, EVP_md5(), nullptr);
  std::string buf(1 << 20, '\0');
  uint64_t total = 0;
  bool same = true;
  for (;;) {
    auto n = (*get)->Read(buf.data(), buf.size());
    ASSERT_TRUE(n.ok()) << n.error().message;
    if (*n == 0) break;
    for (size_t i = 0; i < *n && same; i += 4093) same = buf[i] == PatternSource::Byte(total + i);
    EVP_DigestUpdate(md5, buf.data(), *n);
    total += *n;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(md5, digest, &len);
  EVP_MD_CTX_free(md5);
  EXPECT_EQ(total, kSize);
  EXPECT_TRUE(same);
  std::string hex;
  char h[3];
  for (unsigned i = 0; i < len; ++i) {
    std::snprintf(h, sizeof h, "%02x", digest[i]);
    hex += h;
  }
  EXPECT_EQ(hex, put->etag);

  const long growth_kib = RssKiB() - before;
  RecordProperty("rss_growth_kib", static_cast<int>(growth_kib));
  EXPECT_LT(growth_kib, 32 * 1024) << "resident memory grew by " << growth_kib << " KiB";
}

}  // namespace
}  // namespace inferd::store
