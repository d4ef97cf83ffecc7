#include "http/sigv4.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/strings.h"
#include "http/uri.h"

namespace inferd::http::sigv4 {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;
using SysTime = std::chrono::system_clock::time_point;

// The AWS SigV4 test suite ("aws-sig-v4-test-suite"): every case is signed by AKIDEXAMPLE for
// us-east-1/service at 20150830T123600Z.
constexpr char kSuiteKey[] = "AKIDEXAMPLE";
constexpr char kSuiteSecret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr char kEmptySha[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

SysTime Utc(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0) {
  using namespace std::chrono;
  return sys_days(year_month_day{year{y}, month{mo}, day{d}}) + hours(h) + minutes(mi) + seconds(s);
}

const SysTime kSuiteTime = Utc(2015, 8, 30, 12, 36, 0);

Request MakeRequest(std::string method, std::string path, std::string query,
                    std::vector<std::pair<std::string, std::string>> headers,
                    std::string body = "") {
  Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.query = std::move(query);
  r.target = r.path + (r.query.empty() ? "" : "?" + r.query);
  for (auto& [name, value] : headers) r.headers.Add(name, value);
  r.body = std::move(body);
  return r;
}

// ---- primitives ----

TEST(Sigv4Primitives, Sha256AndHmac) {
  EXPECT_EQ(Sha256Hex(""), kEmptySha);
  EXPECT_EQ(Sha256Hex("Welcome to Amazon S3."),
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  // RFC 4231 test case 2.
  EXPECT_EQ(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(HexEncode(std::string("\x00\xff\x10", 3)), "00ff10");
}

// ---- AWS test suite ----

struct SuiteCase {
  const char* name;
  const char* method;
  const char* path;   // as it appears in the request line (the suite's paths are not encoded)
  const char* query;  // raw query
  std::vector<std::pair<std::string, std::string>> headers;
  const char* body;
  const char* creq;   // expected canonical request
  const char* sts;    // expected string to sign
  const char* authz;  // expected Authorization header
};

constexpr char kStsPrefix[] =
    "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n";
constexpr char kAuthPrefix[] =
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, ";
const std::pair<std::string, std::string> kHost{"Host", "example.amazonaws.com"};
const std::pair<std::string, std::string> kDate{"X-Amz-Date", "20150830T123600Z"};

std::string S(const char* a, const char* b) { return std::string(a) + b; }

const std::vector<SuiteCase>& SuiteCases() {
  static const auto* cases = new std::vector<SuiteCase>{
      {"get-vanilla",
       "GET",
       "/",
       "",
       {kHost, kDate},
       "",
       "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
       "SignedHeaders=host;x-amz-date, "
       "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"get-vanilla-query-order-key-case",
       "GET",
       "/",
       "Param2=value2&Param1=value1",
       {kHost, kDate},
       "",
       "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\n"
       "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
       "SignedHeaders=host;x-amz-date, "
       "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
      {"get-vanilla-query-order-key",
       "GET",
       "/",
       "Param1=value2&Param1=Value1",
       {kHost, kDate},
       "",
       "GET\n/\nParam1=Value1&Param1=value2\nhost:example.amazonaws.com\n"
       "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89",
       "SignedHeaders=host;x-amz-date, "
       "Signature=eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"},
      {"get-vanilla-query-order-value",
       "GET",
       "/",
       "Param1=value2&Param1=value1",
       {kHost, kDate},
       "",
       "GET\n/\nParam1=value1&Param1=value2\nhost:example.amazonaws.com\n"
       "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "c968629d70850097a2d8781c9bf7edcb988b04cac14cca9be4acc3595f884606",
       "SignedHeaders=host;x-amz-date, "
       "Signature=5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"},
      {"get-vanilla-query-unreserved",
       "GET",
       "/",
       "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz="
       "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
       {kHost, kDate},
       "",
       "GET\n/\n-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz="
       "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n"
       "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177",
       "SignedHeaders=host;x-amz-date, "
       "Signature=9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
      {"get-vanilla-utf8-query",
       "GET",
       "/",
       "\xe1\x88\xb4=bar",
       {kHost, kDate},
       "",
       "GET\n/\n%E1%88%B4=bar\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
       "host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
       "SignedHeaders=host;x-amz-date, "
       "Signature=2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
      {"get-vanilla-empty-query-key",
       "GET",
       "/",
       "Param1=value1",
       {kHost, kDate},
       "",
       "GET\n/\nParam1=value1\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
       "host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "1e24db194ed7d0eec2de28d7369675a243488e08526e8c1c73571282f7c517ab",
       "SignedHeaders=host;x-amz-date, "
       "Signature=a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"},
      {"get-header-value-trim",
       "GET",
       "/",
       "",
       {kHost, {"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}, kDate},
       "",
       "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\n"
       "x-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
       "SignedHeaders=host;my-header1;my-header2;x-amz-date, "
       "Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
      {"get-header-key-duplicate",
       "GET",
       "/",
       "",
       {kHost, {"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}, kDate},
       "",
       "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\n"
       "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
       "SignedHeaders=host;my-header1;x-amz-date, "
       "Signature=c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
      {"get-header-value-order",
       "GET",
       "/",
       "",
       {kHost,
        {"My-Header1", "value4"},
        {"My-Header1", "value1"},
        {"My-Header1", "value3"},
        {"My-Header1", "value2"},
        kDate},
       "",
       "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value4,value1,value3,value2\n"
       "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86",
       "SignedHeaders=host;my-header1;x-amz-date, "
       "Signature=08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
      {"get-unreserved",
       "GET",
       "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
       "",
       {kHost, kDate},
       "",
       "GET\n/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n\n"
       "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9",
       "SignedHeaders=host;x-amz-date, "
       "Signature=07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
      {"get-utf8",
       "GET",
       "/\xe1\x88\xb4",
       "",
       {kHost, kDate},
       "",
       "GET\n/%E1%88%B4\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
       "host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102",
       "SignedHeaders=host;x-amz-date, "
       "Signature=8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
      {"get-space",
       "GET",
       "/example space/",
       "",
       {kHost, kDate},
       "",
       "GET\n/example%20space/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
       "host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86",
       "SignedHeaders=host;x-amz-date, "
       "Signature=652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"},
      {"get-relative",
       "GET",
       "/example/..",
       "",
       {kHost, kDate},
       "",
       "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
       "SignedHeaders=host;x-amz-date, "
       "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"get-relative-relative",
       "GET",
       "/example1/example2/../..",
       "",
       {kHost, kDate},
       "",
       "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
       "SignedHeaders=host;x-amz-date, "
       "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"get-slash",
       "GET",
       "//",
       "",
       {kHost, kDate},
       "",
       "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
       "SignedHeaders=host;x-amz-date, "
       "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"get-slash-dot-slash",
       "GET",
       "/./",
       "",
       {kHost, kDate},
       "",
       "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
       "SignedHeaders=host;x-amz-date, "
       "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"get-slash-pointless-dot",
       "GET",
       "/./example",
       "",
       {kHost, kDate},
       "",
       "GET\n/example\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
       "host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "214d50c111a8edc4819da6a636336472c916b5240f51e9a51b5c3305180cf702",
       "SignedHeaders=host;x-amz-date, "
       "Signature=ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5"},
      {"get-slashes",
       "GET",
       "//example//",
       "",
       {kHost, kDate},
       "",
       "GET\n/example/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
       "host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "cb96b4ac96d501f7c5c15bc6d67b3035061cfced4af6585ad927f7e6c985c015",
       "SignedHeaders=host;x-amz-date, "
       "Signature=9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"},
      {"post-vanilla",
       "POST",
       "/",
       "",
       {kHost, kDate},
       "",
       "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
       "SignedHeaders=host;x-amz-date, "
       "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
      {"post-vanilla-query",
       "POST",
       "/",
       "Param1=value1",
       {kHost, kDate},
       "",
       "POST\n/\nParam1=value1\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
       "host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
       "SignedHeaders=host;x-amz-date, "
       "Signature=28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
      {"post-header-key-case",
       "POST",
       "/",
       "",
       {{"HOST", "example.amazonaws.com"}, kDate},
       "",
       "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
       "SignedHeaders=host;x-amz-date, "
       "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
      {"post-header-key-sort",
       "POST",
       "/",
       "",
       {kHost, {"My-Header1", "value1"}, kDate},
       "",
       "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nx-amz-date:20150830T123600Z\n\n"
       "host;my-header1;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65",
       "SignedHeaders=host;my-header1;x-amz-date, "
       "Signature=c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"},
      {"post-header-value-case",
       "POST",
       "/",
       "",
       {kHost, {"My-Header1", "VALUE1"}, kDate},
       "",
       "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:VALUE1\nx-amz-date:20150830T123600Z\n\n"
       "host;my-header1;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "d51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93",
       "SignedHeaders=host;my-header1;x-amz-date, "
       "Signature=cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"},
      {"post-x-www-form-urlencoded",
       "POST",
       "/",
       "",
       {{"Content-Type", "application/x-www-form-urlencoded"}, kHost, kDate},
       "Param1=value1",
       "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\n"
       "x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n"
       "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
       "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
       "SignedHeaders=content-type;host;x-amz-date, "
       "Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
      {"post-x-www-form-urlencoded-parameters",
       "POST",
       "/",
       "",
       {{"Content-Type", "application/x-www-form-urlencoded; charset=utf8"}, kHost, kDate},
       "Param1=value1",
       "POST\n/\n\ncontent-type:application/x-www-form-urlencoded; charset=utf8\n"
       "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n"
       "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
       "2e1cf7ed91881a30569e46552437e4156c823447bf1781b921b5d486c568dd1c",
       "SignedHeaders=content-type;host;x-amz-date, "
       "Signature=1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe"},
  };
  return *cases;
}

std::vector<std::string> SignedHeadersOf(std::string_view authz) {
  auto start = authz.find("SignedHeaders=") + 14;
  auto end = authz.find(',', start);
  std::vector<std::string> out;
  for (std::string_view rest = authz.substr(start, end - start); !rest.empty();) {
    auto semi = rest.find(';');
    out.emplace_back(rest.substr(0, semi));
    rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
  }
  return out;
}

std::string SignatureOf(std::string_view authz) {
  return std::string(authz.substr(authz.find("Signature=") + 10));
}

TEST(Sigv4Suite, CanonicalRequestStringToSignAndSignature) {
  for (const SuiteCase& c : SuiteCases()) {
    SCOPED_TRACE(c.name);
    Request r = MakeRequest(c.method, c.path, c.query, c.headers, c.body);
    std::string authz = S(kAuthPrefix, c.authz);
    std::string creq = CanonicalRequest(r, SignedHeadersOf(authz), Sha256Hex(r.body), true);
    EXPECT_EQ(creq, c.creq);
    std::string sts =
        StringToSign("20150830T123600Z", "20150830/us-east-1/service/aws4_request", creq);
    EXPECT_EQ(sts, S(kStsPrefix, c.sts));
    EXPECT_EQ(Signature(kSuiteSecret, "20150830", "us-east-1", "service", sts), SignatureOf(authz));
  }
}

TEST(Sigv4Suite, VerifierAcceptsEveryCase) {
  FakeClock clock(kSuiteTime + minutes(3));
  Verifier verifier({.credentials = {{kSuiteKey, kSuiteSecret}}}, clock);
  for (const SuiteCase& c : SuiteCases()) {
    SCOPED_TRACE(c.name);
    Request r = MakeRequest(c.method, c.path, c.query, c.headers, c.body);
    r.headers.Add("Authorization", S(kAuthPrefix, c.authz));
    auto id = verifier.Verify(r);
    ASSERT_TRUE(id.ok()) << id.error().message;
    EXPECT_EQ(id->access_key_id, kSuiteKey);
    EXPECT_EQ(id->region, "us-east-1");
    EXPECT_EQ(id->service, "service");
    EXPECT_FALSE(id->presigned);
  }
}

TEST(Sigv4Suite, SignRequestReproducesSuiteSignatures) {
  // SignRequest signs host, x-amz-* and content-type: the cases made of only those.
  for (const char* name : {"get-vanilla", "get-vanilla-query-order-key-case", "get-utf8",
                           "get-space", "post-vanilla", "post-x-www-form-urlencoded"}) {
    SCOPED_TRACE(name);
    const SuiteCase* c = nullptr;
    for (const auto& candidate : SuiteCases()) {
      if (std::string_view(candidate.name) == name) c = &candidate;
    }
    ASSERT_NE(c, nullptr);
    std::vector<std::pair<std::string, std::string>> headers;
    for (const auto& h : c->headers) {
      if (h.first != "X-Amz-Date") headers.push_back(h);
    }
    Request r = MakeRequest(c->method, c->path, c->query, headers, c->body);
    SignRequest(r, kSuiteKey, kSuiteSecret, "us-east-1", "service", kSuiteTime);
    EXPECT_EQ(r.headers.Get("X-Amz-Date"), "20150830T123600Z");
    EXPECT_FALSE(r.headers.Has("x-amz-content-sha256"));
    EXPECT_EQ(r.headers.Get("Authorization"), S(kAuthPrefix, c->authz));
  }
}

// ---- S3 documentation examples (examplebucket, 20130524) ----

constexpr char kS3Key[] = "AKIAIOSFODNN7EXAMPLE";
constexpr char kS3Secret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const SysTime kS3Time = Utc(2013, 5, 24);

TEST(Sigv4S3Examples, GetObjectWithRange) {
  Request r = MakeRequest("GET", "/test.txt", "",
                          {{"Host", "examplebucket.s3.amazonaws.com"},
                           {"Range", "bytes=0-9"},
                           {"x-amz-content-sha256", kEmptySha},
                           {"x-amz-date", "20130524T000000Z"}});
  std::string creq = CanonicalRequest(r, {"host", "range", "x-amz-content-sha256", "x-amz-date"},
                                      kEmptySha, /*double_encode_path=*/false);
  EXPECT_EQ(
      creq,
      "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
      "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
      "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  std::string sts = StringToSign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request", creq);
  EXPECT_EQ(sts,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(Signature(kS3Secret, "20130524", "us-east-1", "s3", sts),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");

  // The documented header, as S3 receives it (no spaces after the commas).
  r.headers.Add("Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
                "aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  FakeClock clock(kS3Time + minutes(1));
  Verifier verifier({.credentials = {{kS3Key, kS3Secret}}}, clock);
  auto id = verifier.Verify(r);
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_EQ(id->service, "s3");
}

TEST(Sigv4S3Examples, PutObjectSignedBySignRequest) {
  const std::string body = "Welcome to Amazon S3.";
  Request r = MakeRequest("PUT", "/test%24file.text", "",
                          {{"Host", "examplebucket.s3.amazonaws.com"},
                           {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                           {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
                          body);
  SignRequest(r, kS3Key, kS3Secret, "us-east-1", "s3", kS3Time, Sha256Hex(body));
  EXPECT_EQ(r.headers.Get("x-amz-content-sha256"),
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  std::string authz(*r.headers.Get("Authorization"));
  EXPECT_EQ(SignedHeadersOf(authz),
            (std::vector<std::string>{"date", "host", "x-amz-content-sha256", "x-amz-date",
                                      "x-amz-storage-class"}));
  EXPECT_EQ(SignatureOf(authz), "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");

  // S3 signs the path as sent: "$" unencoded in the request line canonicalizes the same way.
  Request raw = r;
  raw.path = "/test$file.text";
  FakeClock clock(kS3Time);
  Verifier verifier({.credentials = {{kS3Key, kS3Secret}}}, clock);
  EXPECT_TRUE(verifier.Verify(r).ok());
  EXPECT_TRUE(verifier.Verify(raw).ok());
}

TEST(Sigv4S3Examples, RequestSignerSignsAsSignRequestAcrossDates) {
  // One signer, its key cached per date: the documented signature, then another day's request
  // (a new key), then the first day's again (the key derived again), each as SignRequest signs it.
  const std::string body = "Welcome to Amazon S3.";
  auto put = [&body] {
    return MakeRequest("PUT", "/test%24file.text", "",
                       {{"Host", "examplebucket.s3.amazonaws.com"},
                        {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                        {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
                       body);
  };
  const RequestSigner signer(kS3Key, kS3Secret, "us-east-1", "s3");
  for (SysTime when : {kS3Time, kS3Time + hours(24) + minutes(5), kS3Time + minutes(3)}) {
    Request r = put();
    Request expected = r;
    signer.Sign(r, when, Sha256Hex(body));
    SignRequest(expected, kS3Key, kS3Secret, "us-east-1", "s3", when, Sha256Hex(body));
    EXPECT_EQ(r.headers.Get("Authorization"), expected.headers.Get("Authorization"));
    EXPECT_EQ(r.headers.Get("X-Amz-Date"), expected.headers.Get("X-Amz-Date"));
    FakeClock clock(when);
    Verifier verifier({.credentials = {{kS3Key, kS3Secret}}}, clock);
    EXPECT_TRUE(verifier.Verify(r).ok());
  }
  Request first = put();
  signer.Sign(first, kS3Time, Sha256Hex(body));
  EXPECT_EQ(SignatureOf(std::string(*first.headers.Get("Authorization"))),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(Sigv4S3Examples, BucketRequestsWithQueries) {
  struct {
    const char* query;
    const char* signature;
  } cases[] = {
      {"lifecycle", "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"},
      {"max-keys=2&prefix=J", "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.query);
    Request r = MakeRequest("GET", "/", c.query,
                            {{"Host", "examplebucket.s3.amazonaws.com"},
                             {"x-amz-content-sha256", kEmptySha},
                             {"x-amz-date", "20130524T000000Z"}});
    std::string creq =
        CanonicalRequest(r, {"host", "x-amz-content-sha256", "x-amz-date"}, kEmptySha, false);
    std::string sts = StringToSign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request", creq);
    EXPECT_EQ(Signature(kS3Secret, "20130524", "us-east-1", "s3", sts), c.signature);
  }
}

constexpr char kS3PresignedQuery[] =
    "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%"
    "2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&"
    "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

TEST(Sigv4S3Examples, PresignedUrl) {
  Request r = MakeRequest("GET", "/test.txt", kS3PresignedQuery,
                          {{"Host", "examplebucket.s3.amazonaws.com"}});
  std::string creq = CanonicalRequest(r, {"host"}, "UNSIGNED-PAYLOAD", false);
  EXPECT_EQ(creq,
            "GET\n/test.txt\nX-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE"
            "%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires="
            "86400&X-Amz-SignedHeaders=host\nhost:examplebucket.s3.amazonaws.com\n\nhost\n"
            "UNSIGNED-PAYLOAD");
  std::string sts = StringToSign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request", creq);
  EXPECT_EQ(sts,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04");
  EXPECT_EQ(Signature(kS3Secret, "20130524", "us-east-1", "s3", sts),
            "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");

  FakeClock clock(kS3Time + hours(23));
  Verifier verifier({.credentials = {{kS3Key, kS3Secret}}}, clock);
  auto id = verifier.Verify(r);
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_TRUE(id->presigned);
  EXPECT_EQ(id->access_key_id, kS3Key);

  clock.Advance(hours(1) + seconds(1));  // 86401 s after X-Amz-Date
  auto expired = verifier.Verify(r);
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.error().code, Errc::kAccessDenied);
  EXPECT_EQ(expired.error().message, "Request has expired");

  Request tampered = r;
  tampered.path = "/other.txt";
  FakeClock early(kS3Time);
  Verifier fresh({.credentials = {{kS3Key, kS3Secret}}}, early);
  EXPECT_EQ(fresh.Verify(tampered).error().code, Errc::kBadSignature);
}

// ---- Verifier behaviour ----

constexpr char kKey[] = "AKIDINFERD";
constexpr char kSecret[] = "inferd-secret";
const SysTime kNow = Utc(2024, 3, 1, 10, 0, 0);

class VerifierTest : public ::testing::Test {
 protected:
  VerifierTest() : clock_(kNow), verifier_({.credentials = {{kKey, kSecret}}}, clock_) {}

  static Request Signed(std::string secret = kSecret, SysTime when = kNow) {
    Request r = MakeRequest("POST", "/endpoints/my-endpoint/async-invocations", "b=2&a=1",
                            {{"Host", "localhost:8080"},
                             {"Content-Type", "application/json"},
                             {"X-Amzn-SageMaker-InputLocation", "s3://bucket/in.json"},
                             {"X-Amz-Security-Token", "token"},
                             {"User-Agent", "test"}},
                            "{\"x\":1}");
    SignRequest(r, kKey, secret, "us-west-2", "sagemaker", when);
    return r;
  }

  Errc CodeOf(const Request& r) const {
    auto result = verifier_.Verify(r);
    EXPECT_FALSE(result.ok());
    return result.ok() ? Errc::kInternal : result.error().code;
  }

  FakeClock clock_;
  Verifier verifier_;
};

TEST_F(VerifierTest, AcceptsSignedRequest) {
  Request r = Signed();
  EXPECT_EQ(r.headers.Get("X-Amz-Date"), "20240301T100000Z");
  EXPECT_EQ(
      SignedHeadersOf(*r.headers.Get("Authorization")),
      (std::vector<std::string>{"content-type", "host", "x-amz-date", "x-amz-security-token"}));
  auto id = verifier_.Verify(r);
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_EQ(id->access_key_id, kKey);
  EXPECT_EQ(id->region, "us-west-2");
  EXPECT_EQ(id->service, "sagemaker");
  EXPECT_FALSE(id->presigned);
  // Unsigned headers may change in transit.
  r.headers.Set("User-Agent", "proxy");
  EXPECT_TRUE(verifier_.Verify(r).ok());
}

TEST_F(VerifierTest, AmzDatesKeepTheirLeadingZeros) {
  using namespace std::chrono;
  const SysTime when = sys_days(year{2024} / 3 / 5) + 4h + 5min + 6s + 789ms;
  clock_.Advance(when - clock_.Now());
  Request r = Signed(kSecret, when);
  EXPECT_EQ(r.headers.Get("X-Amz-Date"), "20240305T040506Z");
  auto id = verifier_.Verify(r);
  EXPECT_TRUE(id.ok()) << id.error().message;
  // A signature an hour old: the message names both times in basic format.
  clock_.Advance(hours(1));
  auto late = verifier_.Verify(r);
  ASSERT_FALSE(late.ok());
  EXPECT_NE(late.error().message.find("20240305T040506Z is now earlier than 20240305T045006Z"),
            std::string::npos)
      << late.error().message;
}

TEST_F(VerifierTest, RejectsWrongSecret) {
  auto result = verifier_.Verify(Signed("other-secret"));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, Errc::kBadSignature);
  EXPECT_EQ(result.error().message.rfind("The request signature we calculated does not match", 0),
            0u);
}

TEST_F(VerifierTest, RejectsAnUpperCasedSignature) {
  Request r = Signed();
  std::string auth(*r.headers.Get("Authorization"));
  auto at = auth.find("Signature=") + 10;
  for (size_t i = at; i < auth.size(); ++i) {
    auth[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(auth[i])));
  }
  r.headers.Set("Authorization", auth);
  auto result = verifier_.Verify(r);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, Errc::kBadSignature);
}

TEST_F(VerifierTest, CachedSigningKeysStayPerScope) {
  // The verifier keeps derived signing keys: a later request of another day or region must be
  // checked with that scope's key, and a wrong secret still fails after a right one was cached.
  ASSERT_TRUE(verifier_.Verify(Signed()).ok());
  ASSERT_TRUE(verifier_.Verify(Signed()).ok());  // served from the cache
  EXPECT_EQ(CodeOf(Signed("other-secret")), Errc::kBadSignature);
  const SysTime next_day = kNow + hours(24);
  clock_.Advance(hours(24));
  ASSERT_TRUE(verifier_.Verify(Signed(kSecret, next_day)).ok());
  // Signed for us-west-2 with the key of eu-west-1 while the credential names us-west-2.
  Request r = Signed(kSecret, next_day);
  Request other = r;
  other.headers.Remove("Authorization");
  SignRequest(other, kKey, kSecret, "eu-west-1", "sagemaker", next_day);
  ASSERT_TRUE(verifier_.Verify(other).ok());
  std::string auth(*r.headers.Get("Authorization"));
  std::string other_sig = SignatureOf(*other.headers.Get("Authorization"));
  auth.replace(auth.find("Signature=") + 10, std::string::npos, other_sig);
  r.headers.Set("Authorization", auth);
  EXPECT_EQ(CodeOf(r), Errc::kBadSignature);
}

TEST_F(VerifierTest, RejectsUnknownAccessKey) {
  Request r = Signed();
  SignRequest(r, "AKIDOTHER", kSecret, "us-west-2", "sagemaker", kNow);
  auto result = verifier_.Verify(r);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, Errc::kUnknownAccessKey);
  EXPECT_EQ(result.error().message, "The security token included in the request is invalid.");
}

TEST_F(VerifierTest, RejectsMissingAuthentication) {
  Request r = Signed();
  r.headers.Remove("Authorization");
  auto result = verifier_.Verify(r);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, Errc::kMissingAuth);
  EXPECT_EQ(result.error().message, "Missing Authentication Token");
}

TEST_F(VerifierTest, ChecksClockSkewBothWays) {
  Request r = Signed();
  clock_.Advance(minutes(14));
  EXPECT_TRUE(verifier_.Verify(r).ok());
  clock_.Advance(minutes(2));  // 16 min after signing
  auto late = verifier_.Verify(r);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, Errc::kClockSkew);
  EXPECT_EQ(late.error().message,
            "Signature expired: 20240301T100000Z is now earlier than 20240301T100100Z "
            "(20240301T101600Z - 15 min.)");

  // The clock says 10:16; a request signed at 10:32 is 16 min in the future.
  auto early = verifier_.Verify(Signed(kSecret, kNow + minutes(32)));
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.error().code, Errc::kClockSkew);
  EXPECT_EQ(early.error().message,
            "Signature not yet current: 20240301T103200Z is still later than 20240301T103100Z "
            "(20240301T101600Z + 15 min.)");
}

TEST_F(VerifierTest, RejectsTampering) {
  Request body = Signed();
  body.body = "{\"x\":2}";
  EXPECT_EQ(CodeOf(body), Errc::kBadSignature);

  Request header = Signed();
  header.headers.Set("X-Amz-Security-Token", "other-token");
  EXPECT_EQ(CodeOf(header), Errc::kBadSignature);
  header = Signed();
  header.headers.Set("Content-Type", "text/plain");
  EXPECT_EQ(CodeOf(header), Errc::kBadSignature);

  Request added = Signed();
  added.headers.Add("Content-Type", "text/plain");  // a second value of a signed header
  EXPECT_EQ(CodeOf(added), Errc::kBadSignature);

  Request query = Signed();
  query.query = "b=2&a=3";
  EXPECT_EQ(CodeOf(query), Errc::kBadSignature);

  Request path = Signed();
  path.path = "/endpoints/other/async-invocations";
  EXPECT_EQ(CodeOf(path), Errc::kBadSignature);

  Request method = Signed();
  method.method = "PUT";
  EXPECT_EQ(CodeOf(method), Errc::kBadSignature);

  Request date = Signed();
  date.headers.Set("X-Amz-Date", "20240301T100001Z");
  EXPECT_EQ(CodeOf(date), Errc::kBadSignature);
}

TEST_F(VerifierTest, QueryOrderAndEncodingDoNotMatter) {
  Request r = Signed();
  r.query = "a=1&b=%32";  // same parameters, other order, needless escape
  EXPECT_TRUE(verifier_.Verify(r).ok());
}

TEST_F(VerifierTest, RejectsMalformedAuthorization) {
  struct {
    const char* header;
    const char* message_start;
  } cases[] = {
      {"AWS AKIDINFERD:c2lnbmF0dXJl", "The authorization mechanism you have provided"},
      {"AWS4-HMAC-SHA256 Credential=AKIDINFERD/20240301/us-west-2/sagemaker/aws4_request, "
       "SignedHeaders=host;x-amz-date",
       "Authorization header requires 'Signature' parameter."},
      {"AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature=abc",
       "Authorization header requires 'Credential' parameter."},
      {"AWS4-HMAC-SHA256 Credential=AKIDINFERD/20240301/us-west-2/sagemaker, "
       "SignedHeaders=host;x-amz-date, "
       "Signature=0000000000000000000000000000000000000000000000000000"
       "000000000000",
       "Error parsing the X-Amz-Credential parameter"},
      {"AWS4-HMAC-SHA256 Credential=AKIDINFERD/20240301/us-west-2/sagemaker/aws4_request/x, "
       "SignedHeaders=host;x-amz-date, "
       "Signature=0000000000000000000000000000000000000000000000000000"
       "000000000000",
       "Error parsing the X-Amz-Credential parameter"},
      {"AWS4-HMAC-SHA256 Credential=AKIDINFERD//us-west-2/sagemaker/aws4_request, "
       "SignedHeaders=host;x-amz-date, "
       "Signature=0000000000000000000000000000000000000000000000000000"
       "000000000000",
       "Error parsing the X-Amz-Credential parameter"},
      {"AWS4-HMAC-SHA256 Credential=AKIDINFERD/20240301/us-west-2/sagemaker/aws4_request, "
       "SignedHeaders=host;;x-amz-date, "
       "Signature=0000000000000000000000000000000000000000000000000000"
       "000000000000",
       "SignedHeaders contains an empty header name: 'host;;x-amz-date'."},
      {"AWS4-HMAC-SHA256 Credential=AKIDINFERD/20240301/us-west-2/sagemaker/aws5_request, "
       "SignedHeaders=host;x-amz-date, "
       "Signature=0000000000000000000000000000000000000000000000000000"
       "000000000000",
       "Credential should be scoped with a valid terminator"},
      {"AWS4-HMAC-SHA256 Credential=AKIDINFERD/20240302/us-west-2/sagemaker/aws4_request, "
       "SignedHeaders=host;x-amz-date, "
       "Signature=0000000000000000000000000000000000000000000000000000"
       "000000000000",
       "Date in Credential scope does not match"},
      {"AWS4-HMAC-SHA256 Credential=AKIDINFERD/20240301/us-west-2/sagemaker/aws4_request, "
       "SignedHeaders=x-amz-date, Signature=0000000000000000000000000000000000000000000000000000"
       "000000000000",
       "Signature Version 4 requires the 'host' header to be signed"},
      {"AWS4-HMAC-SHA256 Credential=AKIDINFERD/20240301/us-west-2/sagemaker/aws4_request, "
       "SignedHeaders=host;x-amz-date, Signature=xyz",
       "The signature must be 64 hexadecimal characters"},
      {"AWS4-HMAC-SHA256 Credential=AKIDINFERD/20240301/us-west-2/sagemaker/aws4_request, "
       "SignedHeaders, Signature=abc",
       "'SignedHeaders' not a valid key=value pair"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.header);
    Request r = Signed();
    r.headers.Set("Authorization", c.header);
    auto result = verifier_.Verify(r);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code, Errc::kValidation);
    EXPECT_EQ(result.error().message.rfind(c.message_start, 0), 0u) << result.error().message;
  }

  Request no_date = Signed();
  no_date.headers.Remove("X-Amz-Date");
  auto result = verifier_.Verify(no_date);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, Errc::kValidation);
  EXPECT_NE(result.error().message.find("either a 'X-Amz-Date' or a 'Date' header"),
            std::string::npos);

  Request bad_date = Signed();
  bad_date.headers.Set("X-Amz-Date", "2024-03-01T10:00:00Z");
  EXPECT_EQ(CodeOf(bad_date), Errc::kValidation);
}

TEST_F(VerifierTest, FallsBackToTheDateHeader) {
  Request r = MakeRequest("GET", "/", "",
                          {{"Host", "localhost"}, {"Date", "Fri, 01 Mar 2024 10:00:00 GMT"}});
  std::string creq = CanonicalRequest(r, {"date", "host"}, Sha256Hex(""), true);
  std::string sig = Signature(
      kSecret, "20240301", "us-west-2", "sagemaker",
      StringToSign("20240301T100000Z", "20240301/us-west-2/sagemaker/aws4_request", creq));
  r.headers.Add("Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDINFERD/20240301/us-west-2/sagemaker/aws4_request, "
                "SignedHeaders=date;host, Signature=" +
                    sig);
  auto id = verifier_.Verify(r);
  ASSERT_TRUE(id.ok()) << id.error().message;

  r.headers.Set("Date", "Fri, 01 Mar 2024 10:00:01 GMT");
  EXPECT_EQ(CodeOf(r), Errc::kBadSignature);
  r.headers.Set("Date", "yesterday");
  EXPECT_EQ(CodeOf(r), Errc::kValidation);
}

TEST_F(VerifierTest, RejectsBothAuthMechanisms) {
  Request r = Signed();
  r.query += "&X-Amz-Signature=" + std::string(64, '0');
  EXPECT_EQ(CodeOf(r), Errc::kValidation);
}

std::string AmzDate(SysTime t) {
  using namespace std::chrono;
  auto secs = floor<seconds>(t);
  auto midnight = floor<days>(secs);
  year_month_day ymd{midnight};
  hh_mm_ss hms{secs - midnight};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d%02u%02uT%02d%02d%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

// Builds a presigned URL the way botocore does, from the primitives.
Request Presign(std::string service, SysTime when, long long expires, std::string secret = kSecret,
                std::string extra_query = "") {
  std::string amz_date = AmzDate(when);
  std::string date = amz_date.substr(0, 8);
  std::string scope = date + "/us-east-1/" + service + "/aws4_request";
  std::string query = extra_query + "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" +
                      AwsUriEncode(std::string(kKey) + "/" + scope, false) +
                      "&X-Amz-Date=" + amz_date + "&X-Amz-Expires=" + std::to_string(expires) +
                      "&X-Amz-SignedHeaders=host";
  Request r = MakeRequest("GET", "/bucket/key%20name.txt", query, {{"Host", "localhost:9000"}});
  std::string creq = CanonicalRequest(r, {"host"}, "UNSIGNED-PAYLOAD", service != "s3");
  std::string sig =
      Signature(secret, date, "us-east-1", service, StringToSign(amz_date, scope, creq));
  r.query += "&X-Amz-Signature=" + sig;
  return r;
}

TEST_F(VerifierTest, PresignedUrls) {
  Request r = Presign("s3", kNow, 3600);
  auto id = verifier_.Verify(r);
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_TRUE(id->presigned);
  EXPECT_EQ(id->service, "s3");
  EXPECT_EQ(id->region, "us-east-1");

  // Presigned URLs are not subject to the 15-minute skew, only to their expiry.
  clock_.Advance(minutes(59));
  EXPECT_TRUE(verifier_.Verify(r).ok());
  clock_.Advance(minutes(1) + seconds(1));
  auto expired = verifier_.Verify(r);
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.error().code, Errc::kAccessDenied);
  EXPECT_EQ(expired.error().message, "Request has expired");
}

TEST(VerifierPresigned, OtherChecks) {
  FakeClock clock(kNow);
  Verifier verifier({.credentials = {{kKey, kSecret}}}, clock);
  EXPECT_TRUE(verifier.Verify(Presign("sagemaker", kNow, 60)).ok());
  EXPECT_TRUE(
      verifier.Verify(Presign("s3", kNow, 60, kSecret, "X-Amz-Security-Token=tok%2B&")).ok());
  EXPECT_TRUE(verifier.Verify(Presign("s3", kNow, 604800)).ok());
  EXPECT_TRUE(verifier.Verify(Presign("s3", kNow + minutes(14), 60)).ok());

  auto future = verifier.Verify(Presign("s3", kNow + minutes(16), 3600));
  ASSERT_FALSE(future.ok());
  EXPECT_EQ(future.error().code, Errc::kAccessDenied);

  EXPECT_EQ(verifier.Verify(Presign("s3", kNow, 0)).error().code, Errc::kValidation);
  EXPECT_EQ(verifier.Verify(Presign("s3", kNow, 604801)).error().code, Errc::kValidation);
  EXPECT_EQ(verifier.Verify(Presign("s3", kNow, 60, "wrong")).error().code, Errc::kBadSignature);

  Request tampered = Presign("s3", kNow, 60);
  tampered.query = "extra=1&" + tampered.query;
  EXPECT_EQ(verifier.Verify(tampered).error().code, Errc::kBadSignature);

  Request missing = Presign("s3", kNow, 60);
  missing.query = missing.query.substr(missing.query.find("&X-Amz-Credential"));
  auto result = verifier.Verify(missing);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, Errc::kValidation);
  EXPECT_EQ(result.error().message.rfind("Query-string authentication version 4 requires", 0), 0u);
}

TEST(VerifierS3, PayloadHashHeaderAndMessages) {
  FakeClock clock(kNow);
  Verifier verifier({.credentials = {{kKey, kSecret}}}, clock);
  // Streaming uploads sign a marker instead of the body.
  Request r = MakeRequest("PUT", "/bucket/a+b%20c.txt", "",
                          {{"Host", "localhost:9000"}, {"Content-Encoding", "aws-chunked"}},
                          "5;chunk-signature=...\r\nhello\r\n");
  SignRequest(r, kKey, kSecret, "us-east-1", "s3", kNow, "STREAMING-UNSIGNED-PAYLOAD-TRAILER");
  EXPECT_EQ(r.headers.Get("x-amz-content-sha256"), "STREAMING-UNSIGNED-PAYLOAD-TRAILER");
  EXPECT_TRUE(verifier.Verify(r).ok());

  // Without an explicit hash SignRequest still sends x-amz-content-sha256 for s3.
  Request plain = MakeRequest("PUT", "/bucket/k", "", {{"Host", "localhost:9000"}}, "data");
  SignRequest(plain, kKey, kSecret, "us-east-1", "s3", kNow);
  EXPECT_EQ(plain.headers.Get("x-amz-content-sha256"), Sha256Hex("data"));
  EXPECT_TRUE(verifier.Verify(plain).ok());

  Request bad = plain;
  bad.headers.Set("x-amz-storage-class", "STANDARD");  // unsigned x-amz header changes nothing
  EXPECT_TRUE(verifier.Verify(bad).ok());
  SignRequest(bad, kKey, "wrong", "us-east-1", "s3", kNow);
  auto result = verifier.Verify(bad);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, Errc::kBadSignature);
  EXPECT_EQ(result.error().message,
            "The request signature we calculated does not match the signature you provided. Check "
            "your key and signing method.");

  clock.Advance(minutes(20));
  auto skewed = verifier.Verify(plain);
  ASSERT_FALSE(skewed.ok());
  EXPECT_EQ(skewed.error().code, Errc::kClockSkew);
  EXPECT_EQ(skewed.error().message,
            "The difference between the request time and the current time is too large.");
}

TEST(CanonicalUri, DoubleEncodingForServicesSingleForS3) {
  Request r = MakeRequest("GET", "/endpoints/my%3Aep/./x", "", {{"Host", "h"}});
  EXPECT_EQ(CanonicalRequest(r, {"host"}, "UNSIGNED-PAYLOAD", true).substr(0, 32),
            "GET\n/endpoints/my%253Aep/x\n\nhost");
  std::string s3 = CanonicalRequest(r, {"host"}, "UNSIGNED-PAYLOAD", false);
  EXPECT_EQ(s3.substr(0, s3.find("\n\n")), "GET\n/endpoints/my%3Aep/./x");
  r.path = "/bucket/a+b%20c~d*e";
  s3 = CanonicalRequest(r, {"host"}, "UNSIGNED-PAYLOAD", false);
  EXPECT_EQ(s3.substr(0, s3.find("\n\n")), "GET\n/bucket/a%2Bb%20c~d%2Ae");
  r.path = "";
  s3 = CanonicalRequest(r, {"host"}, "UNSIGNED-PAYLOAD", false);
  EXPECT_EQ(s3.substr(0, s3.find("\n\n")), "GET\n/");
}

TEST(CanonicalQuery, ValuelessParametersAndSignatureExcluded) {
  Request r = MakeRequest("GET", "/", "uploads&X-Amz-Signature=abc&b=a%20b&a=x+y", {{"Host", "h"}});
  std::string creq = CanonicalRequest(r, {"host"}, "UNSIGNED-PAYLOAD", true);
  EXPECT_EQ(creq, "GET\n/\na=x%2By&b=a%20b&uploads=\nhost:h\n\nhost\nUNSIGNED-PAYLOAD");
}

// ---- no credentials configured ----

TEST(VerifierNoCredentials, AcceptsAnyWellFormedSignature) {
  FakeClock clock(kNow);
  Verifier verifier({}, clock);
  Request r = MakeRequest("POST", "/", "", {{"Host", "localhost"}}, "body");
  SignRequest(r, "anything", "any-secret", "eu-west-1", "sagemaker", kNow);
  auto id = verifier.Verify(r);
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_EQ(id->access_key_id, "anything");
  EXPECT_EQ(id->region, "eu-west-1");

  r.body = "changed";  // signature no longer matches, but nobody can check it
  EXPECT_TRUE(verifier.Verify(r).ok());
  EXPECT_TRUE(verifier.Verify(Presign("s3", kNow, 60, "whatever")).ok());

  Request malformed = r;
  malformed.headers.Set("Authorization",
                        "AWS4-HMAC-SHA256 Credential=anything/20240301/eu-west-1/sagemaker/"
                        "aws4_request, SignedHeaders=host;x-amz-date");
  EXPECT_EQ(verifier.Verify(malformed).error().code, Errc::kValidation);

  Request unauthenticated = r;
  unauthenticated.headers.Remove("Authorization");
  EXPECT_EQ(verifier.Verify(unauthenticated).error().code, Errc::kMissingAuth);

  clock.Advance(minutes(16));
  EXPECT_EQ(verifier.Verify(r).error().code, Errc::kClockSkew);
  EXPECT_EQ(verifier.Verify(Presign("s3", kNow, 60)).error().code, Errc::kAccessDenied);
}

}  // namespace
}  // namespace inferd::http::sigv4
