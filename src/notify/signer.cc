#include "notify/signer.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/base64.h"

namespace inferd::notify {

namespace {

constexpr const char* kKeyFile = "signing-key.pem";
constexpr const char* kCertFile = "signing-cert.pem";

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

Error OpensslError(std::string what) {
  unsigned long code = ERR_get_error();
  char buf[256] = "unknown error";
  if (code) ERR_error_string_n(code, buf, sizeof buf);
  ERR_clear_error();
  return Error(Errc::kInternal, "signing key: " + what + ": " + buf);
}

const EVP_MD* Digest(int version) { return version == 2 ? EVP_sha256() : EVP_sha1(); }

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

Result<std::string> ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(Errc::kNotFound, path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Writes `text` to `path` durably and atomically: a synced temporary file renamed into place.
Status WriteFile(const std::filesystem::path& path, const std::string& text, mode_t mode) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Error(Errc::kInternal, "cannot write " + tmp.string());
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  bool ok = done == text.size() && ::fsync(fd) == 0;
  ::close(fd);
  std::error_code ec;
  if (ok) std::filesystem::rename(tmp, path, ec);
  if (!ok || ec) return Error(Errc::kInternal, "cannot write " + path.string());
  return OkStatus();
}

Result<X509Ptr> MakeCertificate(EVP_PKEY* key) {
  X509Ptr cert(X509_new());
  if (!cert) return OpensslError("X509_new");
  X509_set_version(cert.get(), 2);  // v3
  BIGNUM* serial = BN_new();
  BN_rand(serial, 120, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY);
  BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert.get()));
  BN_free(serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -24L * 3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 20L * 365 * 24 * 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("inferd"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("sns.inferd.local"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  if (X509_set_pubkey(cert.get(), key) != 1) return OpensslError("X509_set_pubkey");
  if (X509_sign(cert.get(), key, EVP_sha256()) <= 0) return OpensslError("X509_sign");
  return cert;
}

Result<std::string> CertId(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(cert, EVP_sha256(), md, &n) != 1) return OpensslError("X509_digest");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (unsigned int i = 0; i < 16 && i < n; ++i) {
    id.push_back(kHex[md[i] >> 4]);
    id.push_back(kHex[md[i] & 0xF]);
  }
  return id;
}

}  // namespace

// The key, and signing contexts kept for reuse: initialising one (algorithm fetches, key export
// to the provider, under OpenSSL's global locks) cost more than the digest. A context is used by
// one thread at a time; EVP_PKEY_sign may be called again on an initialised context.
struct Signer::Key {
  static constexpr size_t kIdlePerVersion = 32;

  explicit Key(PkeyPtr k) : pkey(std::move(k)) {
    digests[0] = EVP_MD_fetch(nullptr, "SHA1", nullptr);
    digests[1] = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  }
  ~Key() {
    for (auto& list : idle) {
      for (EVP_PKEY_CTX* ctx : list) EVP_PKEY_CTX_free(ctx);
    }
    for (EVP_MD* md : digests) EVP_MD_free(md);
  }

  // A context ready to sign a `version` digest (slot 0: SignatureVersion 1, 1: 2), or null.
  EVP_PKEY_CTX* Take(int slot) {
    {
      std::lock_guard lock(mu);
      if (!idle[slot].empty()) {
        EVP_PKEY_CTX* ctx = idle[slot].back();
        idle[slot].pop_back();
        return ctx;
      }
    }
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr);
    if (ctx && EVP_PKEY_sign_init(ctx) == 1 &&
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
        EVP_PKEY_CTX_set_signature_md(ctx, digests[slot]) == 1) {
      return ctx;
    }
    EVP_PKEY_CTX_free(ctx);
    return nullptr;
  }
  void Give(int slot, EVP_PKEY_CTX* ctx) {
    {
      std::lock_guard lock(mu);
      if (idle[slot].size() < kIdlePerVersion) {
        idle[slot].push_back(ctx);
        return;
      }
    }
    EVP_PKEY_CTX_free(ctx);
  }

  // A signature made before for the same digest, if still remembered (one made ahead is then
  // used, unless this lookup signs `ahead` too); otherwise claims `key` (nullopt): the caller
  // signs it and must Settle it. While another caller holds the claim, waits for its signature
  // instead of making the same one again.
  std::optional<std::string> RememberedOrClaim(const std::string& key, bool ahead) {
    std::unique_lock lock(mu);
    for (;;) {
      if (auto it = recent.find(key); it != recent.end()) {
        if (it->second.ahead && !ahead) {
          it->second.ahead = false;
          ahead_unused.fetch_sub(1, std::memory_order_relaxed);
        }
        return it->second.signature;
      }
      if (signing.insert(key).second) return std::nullopt;
      settled.wait(lock);
    }
  }
  // Ends a claim: remembers `signature` (none when signing failed: a waiter then signs itself),
  // as made ahead of its use when `ahead`.
  void Settle(std::string key, const std::string* signature, bool ahead) {
    {
      std::lock_guard lock(mu);
      signing.erase(key);
      if (signature && recent.emplace(key, Remembered{*signature, ahead}).second) {
        if (ahead) ahead_unused.fetch_add(1, std::memory_order_relaxed);
        order.push_back(std::move(key));
        if (order.size() > kRemembered) {
          auto oldest = recent.find(order.front());
          if (oldest->second.ahead) {
            ahead_unused.fetch_sub(1, std::memory_order_relaxed);
            ahead_wasted.fetch_add(1, std::memory_order_relaxed);
          }
          recent.erase(oldest);
          order.pop_front();
        }
      }
    }
    settled.notify_all();
  }

  PkeyPtr pkey;
  EVP_MD* digests[2];  // SHA-1, SHA-256 (fetched once)
  std::mutex mu;
  std::vector<EVP_PKEY_CTX*> idle[2];  // guarded by mu
  // The newest signatures by (version, digest): every subscription of a topic, and every retry,
  // signs the same string-to-sign (it names no subscription), and PKCS#1 v1.5 signatures are
  // deterministic, so one RSA operation serves them all. Keyed by the digest the signature is
  // made over anyway, so remembering adds no risk a collision would not already carry.
  static constexpr size_t kRemembered = 4096;
  struct Remembered {
    std::string signature;
    bool ahead;  // made by SignAhead and not used since
  };
  std::unordered_map<std::string, Remembered> recent;  // guarded by mu
  std::deque<std::string> order;                       // guarded by mu; oldest first
  // Digests being signed now (SignAhead racing the delivery that needs the signature).
  std::unordered_set<std::string> signing;  // guarded by mu
  std::condition_variable settled;          // a claim in `signing` ended
  std::atomic<int64_t> rsa_operations{0};
  std::atomic<int> ahead_unused{0};      // entries of `recent` with `ahead` set
  std::atomic<int64_t> ahead_wasted{0};  // made ahead, forgotten unused
};

Signer::Signer(std::unique_ptr<Key> key, std::string cert_pem, std::string cert_id)
    : key_(std::move(key)), cert_pem_(std::move(cert_pem)), cert_id_(std::move(cert_id)) {}

Signer::~Signer() = default;

Result<std::unique_ptr<Signer>> Signer::Open(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Error(Errc::kInternal, "cannot create " + dir.string() + ": " + ec.message());
  auto key_pem = ReadFile(dir / kKeyFile);
  auto cert_pem = ReadFile(dir / kCertFile);
  if (key_pem.ok() && cert_pem.ok()) {
    BioPtr kb(BIO_new_mem_buf(key_pem->data(), static_cast<int>(key_pem->size())));
    PkeyPtr pkey(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
    BioPtr cb(BIO_new_mem_buf(cert_pem->data(), static_cast<int>(cert_pem->size())));
    X509Ptr cert(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
    if (!pkey || !cert || X509_check_private_key(cert.get(), pkey.get()) != 1) {
      return OpensslError("the key and certificate in " + dir.string() +
                          " are unreadable or do not belong together; remove both to make new "
                          "ones");
    }
    auto id = CertId(cert.get());
    if (!id.ok()) return std::move(id).error();
    auto key = std::make_unique<Key>(std::move(pkey));
    if (!key->digests[0] || !key->digests[1]) return OpensslError("EVP_MD_fetch");
    return std::unique_ptr<Signer>(new Signer(std::move(key), *cert_pem, *id));
  }

  // First start (or a half-written pair): make both.
  PkeyPtr pkey(EVP_RSA_gen(2048));
  if (!pkey) return OpensslError("EVP_RSA_gen");
  auto cert = MakeCertificate(pkey.get());
  if (!cert.ok()) return std::move(cert).error();
  BioPtr kb(BIO_new(BIO_s_mem()));
  BioPtr cb(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey(kb.get(), pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1 ||
      PEM_write_bio_X509(cb.get(), cert->get()) != 1) {
    return OpensslError("PEM encoding");
  }
  std::string new_key = BioText(kb.get()), new_cert = BioText(cb.get());
  INFERD_RETURN_IF_ERROR(WriteFile(dir / kKeyFile, new_key, 0600));
  INFERD_RETURN_IF_ERROR(WriteFile(dir / kCertFile, new_cert, 0644));
  auto id = CertId(cert->get());
  if (!id.ok()) return std::move(id).error();
  auto key = std::make_unique<Key>(std::move(pkey));
  if (!key->digests[0] || !key->digests[1]) return OpensslError("EVP_MD_fetch");
  return std::unique_ptr<Signer>(new Signer(std::move(key), std::move(new_cert), *id));
}

Result<std::string> Signer::Sign(std::string_view data, int version) const {
  return SignRemembered(data, version, false);
}

Status Signer::SignAhead(std::string_view data, int version) const {
  auto signature = SignRemembered(data, version, true);
  if (!signature.ok()) return std::move(signature).error();
  return OkStatus();
}

Result<std::string> Signer::SignRemembered(std::string_view data, int version, bool ahead) const {
  // Hash, then sign the digest: what EVP_DigestSign does, without a context set up per call.
  const int slot = version == 2 ? 1 : 0;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &digest_len, key_->digests[slot], nullptr) !=
      1) {
    return OpensslError("EVP_Digest");
  }
  std::string remembered_key(1, static_cast<char>('0' + slot));
  remembered_key.append(reinterpret_cast<const char*>(digest), digest_len);
  if (auto sig = key_->RememberedOrClaim(remembered_key, ahead)) return std::move(*sig);
  EVP_PKEY_CTX* ctx = key_->Take(slot);
  if (!ctx) {
    key_->Settle(std::move(remembered_key), nullptr, ahead);
    return OpensslError("EVP_PKEY_sign_init");
  }
  std::string sig(static_cast<size_t>(EVP_PKEY_get_size(key_->pkey.get())), '\0');
  size_t len = sig.size();
  if (EVP_PKEY_sign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len, digest, digest_len) !=
      1) {
    EVP_PKEY_CTX_free(ctx);
    key_->Settle(std::move(remembered_key), nullptr, ahead);
    return OpensslError("EVP_PKEY_sign");
  }
  key_->Give(slot, ctx);
  key_->rsa_operations.fetch_add(1, std::memory_order_relaxed);
  sig.resize(len);
  std::string encoded = Base64Encode(sig);
  key_->Settle(std::move(remembered_key), &encoded, ahead);
  return encoded;
}

int64_t Signer::rsa_operations() const {
  return key_->rsa_operations.load(std::memory_order_relaxed);
}

int Signer::ahead_unused() const { return key_->ahead_unused.load(std::memory_order_relaxed); }

int64_t Signer::ahead_wasted() const { return key_->ahead_wasted.load(std::memory_order_relaxed); }

Status Signer::Verify(std::string_view cert_pem, std::string_view data, std::string_view signature,
                      int version) {
  BioPtr cb(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
  X509Ptr cert(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
  if (!cert) return Error(Errc::kValidation, "not a PEM certificate");
  PkeyPtr pub(X509_get_pubkey(cert.get()));
  auto raw = Base64Decode(signature);
  if (!pub || !raw) return Error(Errc::kValidation, "no public key or signature not base64");
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, Digest(version), nullptr, pub.get()) != 1) {
    ERR_clear_error();
    return Error(Errc::kValidation, "cannot initialise verification");
  }
  int rc =
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(raw->data()), raw->size(),
                       reinterpret_cast<const unsigned char*>(data.data()), data.size());
  ERR_clear_error();
  if (rc != 1) return Error(Errc::kValidation, "signature does not verify");
  return OkStatus();
}

}  // namespace inferd::notify
