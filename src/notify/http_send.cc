#include "notify/http_send.h"

#include <memory>

namespace inferd::notify {

SendFn MakeHttpSend(http::ClientOptions options) {
  auto client = std::make_shared<http::Client>(options);
  return [client](const http::ClientRequest& request) {
    return client->Do(request, [](std::string_view) { return OkStatus(); });
  };
}

}  // namespace inferd::notify
