// Signer: the key inferd signs SNS messages with, and its certificate.
//
// At first start an RSA 2048 key and a self-signed X.509 certificate are generated (OpenSSL) and
// kept under <data-dir>/notify/ (signing-key.pem, mode 0600, and signing-cert.pem); later starts
// load them, so signatures verify across restarts. Subscribers fetch the certificate from
// SigningCertURL (<public url>/SimpleNotificationService-<CertId()>.pem) and verify a message's
// Signature over its string-to-sign with the certificate's public key:
//   SignatureVersion 1 = SHA1withRSA, 2 = SHA256withRSA (PKCS#1 v1.5), base64.
//
// Thread-safe after Open (signing contexts are pooled: each is used by one call at a time).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

namespace inferd::notify {

class Signer {
 public:
  // Loads the key and certificate from `dir`, generating (and writing) them when absent.
  static Result<std::unique_ptr<Signer>> Open(const std::filesystem::path& dir);
  ~Signer();
  Signer(const Signer&) = delete;
  Signer& operator=(const Signer&) = delete;

  // Base64 signature of `data`; `version` 1 (SHA1withRSA) or 2 (SHA256withRSA). The newest
  // 4,096 signatures are remembered by digest, so the same string-to-sign — a message delivered
  // to several subscriptions, or again after a failed attempt — costs one RSA operation. A call
  // for a string another thread is signing waits for that signature (Notifier signs ahead).
  Result<std::string> Sign(std::string_view data, int version) const;
  // Makes and remembers the signature of `data` before anyone asks for it (Presigner), unless
  // it is remembered already. Until a Sign() call uses it, it counts in ahead_unused(); one
  // forgotten before that counts in ahead_wasted().
  Status SignAhead(std::string_view data, int version) const;
  // RSA private-key operations so far (the rest of Sign's calls were remembered signatures).
  int64_t rsa_operations() const;
  // Signatures made by SignAhead, still remembered and not used yet.
  int ahead_unused() const;
  // Signatures made by SignAhead and forgotten (4,096 newer ones made) before any Sign() used
  // them: RSA operations spent for nothing.
  int64_t ahead_wasted() const;

  const std::string& cert_pem() const { return cert_pem_; }
  // 32 lower-case hex digits identifying the certificate (from its SHA-256 fingerprint).
  const std::string& cert_id() const { return cert_id_; }

  // Verifies a base64 `signature` of `data` with the public key of the PEM certificate (for
  // tests and tools). kValidation when it does not verify.
  static Status Verify(std::string_view cert_pem, std::string_view data, std::string_view signature,
                       int version);

 private:
  struct Key;
  Signer(std::unique_ptr<Key> key, std::string cert_pem, std::string cert_id);
  Result<std::string> SignRemembered(std::string_view data, int version, bool ahead) const;

  std::unique_ptr<Key> key_;
  std::string cert_pem_;
  std::string cert_id_;
};

}  // namespace inferd::notify
