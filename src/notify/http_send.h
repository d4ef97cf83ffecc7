// The production SendFn: deliveries over a shared http::Client (keep-alive pool, TLS verified).
#pragma once

#include "http/client.h"
#include "notify/delivery.h"

namespace inferd::notify {

// The client is shared with the returned function, so a delivery thread abandoned at shutdown
// keeps it alive until its exchange ends. Response bodies are read and discarded.
SendFn MakeHttpSend(http::ClientOptions options = {});

}  // namespace inferd::notify
