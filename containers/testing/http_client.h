// A blocking HTTP/1.1 client for end-to-end tests of the model servers: one connection per
// request, every step bounded by a timeout. Test-only code.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace inferd::containers::testing {

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string error;  // set instead of the above when the exchange failed (e.g. reset)

  bool ok() const { return error.empty(); }
  std::string Header(const std::string& lower_name) const;
};

HttpReply Send(uint16_t port, const std::string& method, const std::string& target,
               const std::string& body = "", const std::map<std::string, std::string>& headers = {},
               std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace inferd::containers::testing
