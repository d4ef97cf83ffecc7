#include "notify/signer.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/base64.h"
#include "notify/envelope.h"
#include "notify/testing.h"

namespace inferd::notify {
namespace {

namespace json = boost::json;
using testing::Str;
using testing::TempDir;

OutboxMessage Notification() {
  OutboxMessage m;
  m.message_id = "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324";
  m.type = MessageType::kNotification;
  m.topic_arn = "arn:aws:sns:us-west-2:123456789012:MyTopic";
  m.subject = "My First Message";
  m.message = "Hello world!";
  m.timestamp = "2012-05-02T00:54:06.655Z";
  return m;
}

TEST(SignerTest, StringToSignIsAwsDocumentedForm) {
  OutboxMessage m = Notification();
  EXPECT_EQ(StringToSign(m, m.message, ""),
            "Message\nHello world!\nMessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n"
            "Subject\nMy First Message\nTimestamp\n2012-05-02T00:54:06.655Z\n"
            "TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\nType\nNotification\n");
  m.subject.reset();
  EXPECT_EQ(StringToSign(m, m.message, ""),
            "Message\nHello world!\nMessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n"
            "Timestamp\n2012-05-02T00:54:06.655Z\n"
            "TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\nType\nNotification\n");
  OutboxMessage c = Notification();
  c.type = MessageType::kSubscriptionConfirmation;
  c.token = "tok";
  c.message = "You have chosen to subscribe.";
  EXPECT_EQ(StringToSign(c, c.message, "https://x/?Action=ConfirmSubscription"),
            "Message\nYou have chosen to subscribe.\nMessageId\n"
            "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\nSubscribeURL\n"
            "https://x/?Action=ConfirmSubscription\nTimestamp\n2012-05-02T00:54:06.655Z\n"
            "Token\ntok\nTopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\n"
            "Type\nSubscriptionConfirmation\n");
}

TEST(SignerTest, SignaturesVerifyWithTheCertificateInBothVersions) {
  TempDir dir;
  auto signer = Signer::Open(dir.path());
  ASSERT_TRUE(signer.ok()) << signer.error().message;
  OutboxMessage m = Notification();
  std::string data = StringToSign(m, m.message, "");
  for (int version : {1, 2}) {
    auto sig = (*signer)->Sign(data, version);
    ASSERT_TRUE(sig.ok()) << sig.error().message;
    EXPECT_TRUE(Signer::Verify((*signer)->cert_pem(), data, *sig, version).ok()) << version;
    EXPECT_FALSE(Signer::Verify((*signer)->cert_pem(), data + "x", *sig, version).ok());
    EXPECT_FALSE(Signer::Verify((*signer)->cert_pem(), data, *sig, 3 - version).ok());
  }
  EXPECT_EQ((*signer)->cert_id().size(), 32u);
  EXPECT_NE((*signer)->cert_pem().find("BEGIN CERTIFICATE"), std::string::npos);
}

// A signer in a fresh directory, and the string to sign of a notification.
class OneSignerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = Signer::Open(dir_.path());
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    signer_ = std::move(opened).value();
    OutboxMessage m = Notification();
    data_ = StringToSign(m, m.message, "");
  }
  TempDir dir_;
  std::unique_ptr<Signer> signer_;
  std::string data_;
};

TEST_F(OneSignerTest, TheSameStringToSignCostsOneRsaOperation) {
  const Signer& s = *signer_;
  const std::string& data = data_;
  auto first = s.Sign(data, 2);
  auto again = s.Sign(data, 2);
  ASSERT_TRUE(first.ok() && again.ok());
  EXPECT_EQ(*again, *first);
  EXPECT_EQ(s.rsa_operations(), 1);
  EXPECT_TRUE(Signer::Verify(s.cert_pem(), data, *again, 2).ok());
  // Another version or other data is signed anew, and verifies.
  auto v1 = s.Sign(data, 1);
  auto other = s.Sign(data + "x", 2);
  ASSERT_TRUE(v1.ok() && other.ok());
  EXPECT_EQ(s.rsa_operations(), 3);
  EXPECT_TRUE(Signer::Verify(s.cert_pem(), data, *v1, 1).ok());
  EXPECT_TRUE(Signer::Verify(s.cert_pem(), data + "x", *other, 2).ok());
  // Signed ahead: remembered as unused until a Sign() takes it.
  ASSERT_TRUE(s.SignAhead(data + "used", 2).ok());
  ASSERT_TRUE(s.SignAhead(data + "unused", 2).ok());
  ASSERT_TRUE(s.SignAhead(data, 2).ok());  // remembered already: not made again, not ahead
  EXPECT_EQ(s.rsa_operations(), 5);
  EXPECT_EQ(s.ahead_unused(), 2);
  ASSERT_TRUE(s.SignAhead(data + "unused", 2).ok());  // signing ahead again does not use it
  EXPECT_EQ(s.rsa_operations(), 5);
  EXPECT_EQ(s.ahead_unused(), 2);
  auto used = s.Sign(data + "used", 2);
  ASSERT_TRUE(used.ok());
  EXPECT_TRUE(Signer::Verify(s.cert_pem(), data + "used", *used, 2).ok());
  EXPECT_EQ(s.rsa_operations(), 5);
  EXPECT_EQ(s.ahead_unused(), 1);
  // Only the newest 4,096 are remembered: the first is signed again after 4,096 others, and the
  // one made ahead and never used is counted wasted.
  for (int i = 0; i < 4096; ++i) ASSERT_TRUE(s.Sign(data + std::to_string(i), 2).ok());
  EXPECT_EQ(s.ahead_unused(), 0);
  EXPECT_EQ(s.ahead_wasted(), 1);
  const int64_t before = s.rsa_operations();
  auto later = s.Sign(data, 2);
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(*later, *first);
  EXPECT_EQ(s.rsa_operations(), before + 1);
}

TEST_F(OneSignerTest, ConcurrentSignsOfOneStringShareOneRsaOperation) {
  const Signer& s = *signer_;
  const std::string& data = data_;
  constexpr int kThreads = 8;
  std::atomic<int> ready{0};
  std::vector<std::string> got(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      ready.fetch_add(1);
      while (ready.load() < kThreads) {
      }
      auto sig = s.Sign(data, 2);
      if (sig.ok()) got[i] = *sig;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(s.rsa_operations(), 1);  // the others waited for the first one's signature
  for (const std::string& sig : got) EXPECT_EQ(sig, got[0]);
  EXPECT_TRUE(Signer::Verify(s.cert_pem(), data, got[0], 2).ok());
}

TEST(SignerTest, KeyIsKeptAcrossRestartsAndPrivate) {
  TempDir dir;
  std::string id, pem, sig;
  {
    auto signer = Signer::Open(dir.path());
    ASSERT_TRUE(signer.ok());
    id = (*signer)->cert_id();
    pem = (*signer)->cert_pem();
    sig = *(*signer)->Sign("data", 2);
  }
  auto again = Signer::Open(dir.path());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ((*again)->cert_id(), id);
  EXPECT_EQ((*again)->cert_pem(), pem);
  EXPECT_TRUE(Signer::Verify(pem, "data", *(*again)->Sign("data", 2), 2).ok());
  struct stat st {};
  ASSERT_EQ(::stat((dir.path() / "signing-key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(SignerTest, EnvelopeCarriesSignedFieldsInSnsOrder) {
  TempDir dir;
  auto signer = Signer::Open(dir.path());
  ASSERT_TRUE(signer.ok());
  Delivery d;
  d.message = Notification();
  d.message.attributes["color"] = {"String", "blue"};
  d.message.attributes["bin"] = {"Binary", "AAE="};
  Subscription sub;
  sub.arn = d.message.topic_arn + ":sub-1";
  sub.topic_arn = d.message.topic_arn;
  sub.protocol = "http";
  sub.endpoint = "http://user:p%40ss@127.0.0.1:9/hook";
  sub.status = SubscriptionStatus::kConfirmed;
  d.subscription = sub;
  d.topic_attributes["SignatureVersion"] = "2";
  auto req = BuildDeliveryRequest(d, **signer, "http://127.0.0.1:8600", EffectivePolicy{},
                                  std::chrono::seconds(15));
  ASSERT_TRUE(req.ok()) << req.error().message;
  EXPECT_EQ(req->method, "POST");
  EXPECT_EQ(req->url, "http://127.0.0.1:9/hook");
  EXPECT_EQ(req->headers.Get("Authorization").value_or(""), "Basic dXNlcjpwQHNz");
  EXPECT_EQ(req->headers.Get("Content-Type").value_or(""), "text/plain; charset=UTF-8");
  EXPECT_EQ(req->headers.Get("x-amz-sns-message-type").value_or(""), "Notification");
  EXPECT_EQ(req->headers.Get("x-amz-sns-message-id").value_or(""), d.message.message_id);
  EXPECT_EQ(req->headers.Get("x-amz-sns-topic-arn").value_or(""), d.message.topic_arn);
  EXPECT_EQ(req->headers.Get("x-amz-sns-subscription-arn").value_or(""), sub.arn);
  EXPECT_EQ(req->headers.Get("User-Agent").value_or(""),
            "Amazon Simple Notification Service Agent");

  json::object body = json::parse(req->body).as_object();
  std::vector<std::string> keys;
  for (const auto& kv : body) keys.emplace_back(kv.key());
  EXPECT_EQ(keys,
            (std::vector<std::string>{"Type", "MessageId", "TopicArn", "Subject", "Message",
                                      "Timestamp", "SignatureVersion", "Signature",
                                      "SigningCertURL", "UnsubscribeURL", "MessageAttributes"}));
  EXPECT_EQ(Str(body["SignatureVersion"]), "2");
  EXPECT_EQ(Str(body["SigningCertURL"]),
            "http://127.0.0.1:8600/SimpleNotificationService-" + (*signer)->cert_id() + ".pem");
  EXPECT_EQ(Str(body["UnsubscribeURL"]),
            "http://127.0.0.1:8600/?Action=Unsubscribe&SubscriptionArn="
            "arn%3Aaws%3Asns%3Aus-west-2%3A123456789012%3AMyTopic%3Asub-1");
  EXPECT_EQ(Str(body["MessageAttributes"].at("color").at("Value")), "blue");
  EXPECT_EQ(Str(body["MessageAttributes"].at("bin").at("Type")), "Binary");
  EXPECT_TRUE(Signer::Verify((*signer)->cert_pem(), StringToSign(d.message, "Hello world!", ""),
                             body["Signature"].as_string(), 2)
                  .ok());

  // Raw delivery: the bare message.
  d.subscription->attributes["RawMessageDelivery"] = "true";
  req = BuildDeliveryRequest(d, **signer, "http://h", EffectivePolicy{}, std::chrono::seconds(1));
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(req->body, "Hello world!");
  EXPECT_EQ(req->headers.Get("x-amz-sns-rawdelivery").value_or(""), "true");
}

TEST(SignerTest, ConfirmationEnvelope) {
  TempDir dir;
  auto signer = Signer::Open(dir.path());
  ASSERT_TRUE(signer.ok());
  Delivery d;
  d.message = Notification();
  d.message.type = MessageType::kSubscriptionConfirmation;
  d.message.subject.reset();
  d.message.token = "abc123";
  d.message.message = "You have chosen to subscribe to the topic x.";
  Subscription sub;
  sub.arn = d.message.topic_arn + ":sub-1";
  sub.protocol = "https";
  sub.endpoint = "https://example.com/";
  sub.attributes["RawMessageDelivery"] = "true";  // never applies to confirmations
  d.subscription = sub;
  auto req =
      BuildDeliveryRequest(d, **signer, "http://h:1", EffectivePolicy{}, std::chrono::seconds(1));
  ASSERT_TRUE(req.ok());
  EXPECT_FALSE(req->headers.Has("x-amz-sns-subscription-arn"));
  json::object body = json::parse(req->body).as_object();
  std::vector<std::string> keys;
  for (const auto& kv : body) keys.emplace_back(kv.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"Type", "MessageId", "Token", "TopicArn", "Message",
                                            "SubscribeURL", "Timestamp", "SignatureVersion",
                                            "Signature", "SigningCertURL"}));
  std::string subscribe_url(body["SubscribeURL"].as_string());
  EXPECT_EQ(subscribe_url,
            "http://h:1/?Action=ConfirmSubscription&TopicArn="
            "arn%3Aaws%3Asns%3Aus-west-2%3A123456789012%3AMyTopic&Token=abc123");
  EXPECT_TRUE(Signer::Verify((*signer)->cert_pem(),
                             StringToSign(d.message, d.message.message, subscribe_url),
                             body["Signature"].as_string(), 1)
                  .ok());
}

// EVP_DigestSign with the key on disk: PKCS#1 v1.5 signatures are deterministic, so Sign() must
// produce exactly these bytes.
std::string ReferenceSignature(const std::filesystem::path& dir, const std::string& data,
                               int version) {
  std::ifstream in(dir / "signing-key.pem");
  std::stringstream pem;
  pem << in.rdbuf();
  std::string text = pem.str();
  BIO* bio = BIO_new_mem_buf(text.data(), static_cast<int>(text.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::string sig(512, '\0');
  size_t len = sig.size();
  const bool ok =
      key && ctx &&
      EVP_DigestSignInit(ctx, nullptr, version == 2 ? EVP_sha256() : EVP_sha1(), nullptr, key) ==
          1 &&
      EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  if (!ok) return "<signing failed>";
  sig.resize(len);
  return Base64Encode(sig);
}

TEST(SignerTest, SignaturesAreThoseOfEvpDigestSignFromManyThreads) {
  TempDir dir;
  auto signer = Signer::Open(dir.path());
  ASSERT_TRUE(signer.ok()) << signer.error().message;
  const std::string data = StringToSign(Notification(), "Hello world!", "");
  const std::string expected[2] = {ReferenceSignature(dir.path(), data, 1),
                                   ReferenceSignature(dir.path(), data, 2)};
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        const int version = 1 + (i + t) % 2;
        auto sig = (*signer)->Sign(data, version);
        if (!sig.ok() || *sig != expected[version - 1]) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(SignerTest, JsonStringsAreWrittenAsBoostJsonWritesThem) {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  for (const std::string& s :
       {std::string(), std::string("plain"), all, std::string("\"quoted\" \\ back\nline\t"),
        std::string("h\xc3\xa9llo \xe2\x82\xac \x7f /slash/ </script>")}) {
    std::string out = "x";
    AppendJsonString(out, s);
    EXPECT_EQ(out, "x" + json::serialize(json::string(s)));
  }
}

// The envelope as it was built before AppendJsonString (boost::json quoting throughout):
// deliveries must stay byte for byte the same.
std::string ReferenceEnvelope(const OutboxMessage& m, const std::string& signature, int version,
                              const std::string& cert_url, const std::string& unsubscribe_url) {
  auto quote = [](std::string_view s) { return json::serialize(json::string(s)); };
  std::string body = "{";
  auto field = [&](std::string_view k, std::string_view v) {
    body += body.size() > 1 ? ",\n  " : "\n  ";
    body += quote(k) + " : " + quote(v);
  };
  field("Type", "Notification");
  field("MessageId", m.message_id);
  field("TopicArn", m.topic_arn);
  if (m.subject) field("Subject", *m.subject);
  field("Message", m.message);
  field("Timestamp", m.timestamp);
  field("SignatureVersion", std::to_string(version));
  field("Signature", signature);
  field("SigningCertURL", cert_url);
  field("UnsubscribeURL", unsubscribe_url);
  body += ",\n  \"MessageAttributes\" : {";
  bool first = true;
  for (const auto& [name, a] : m.attributes) {
    body += first ? "\n    " : ",\n    ";
    first = false;
    body += quote(name) + " : " +
            json::serialize(json::object{{"Type", a.data_type}, {"Value", a.value}});
  }
  body += "\n  }\n}";
  return body;
}

TEST(SignerTest, EnvelopeBytesAreUnchanged) {
  TempDir dir;
  auto signer = Signer::Open(dir.path());
  ASSERT_TRUE(signer.ok());
  Delivery d;
  d.message = Notification();
  d.message.message = "{\"inferenceId\":\"a\\b\",\"note\":\"line\nbreak \xc3\xa9 \x01\"}";
  d.message.attributes["color"] = {"String", "bl\"ue\n"};
  d.message.attributes["n"] = {"Number", "1.5"};
  Subscription sub;
  sub.arn = d.message.topic_arn + ":sub-1";
  sub.protocol = "http";
  sub.endpoint = "http://127.0.0.1:9/hook";
  sub.status = SubscriptionStatus::kConfirmed;
  d.subscription = sub;
  for (int version : {1, 2}) {
    d.topic_attributes["SignatureVersion"] = std::to_string(version);
    auto req = BuildDeliveryRequest(d, **signer, "http://127.0.0.1:8600", EffectivePolicy{},
                                    std::chrono::seconds(15));
    ASSERT_TRUE(req.ok()) << req.error().message;
    const std::string signature =
        ReferenceSignature(dir.path(), StringToSign(d.message, d.message.message, ""), version);
    EXPECT_EQ(req->body,
              ReferenceEnvelope(d.message, signature, version,
                                SigningCertUrl("http://127.0.0.1:8600", (*signer)->cert_id()),
                                UnsubscribeUrl("http://127.0.0.1:8600", sub.arn)));
  }
}

}  // namespace
}  // namespace inferd::notify
