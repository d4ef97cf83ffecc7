// Internal to notify/'s store: the row and JSON helpers store.cc and store_outbox.cc share.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "db/sqlite.h"
#include "notify/types.h"

namespace inferd::notify::internal {

// JSON object text ↔ string map (non-string members are ignored).
std::string MapToJson(const std::map<std::string, std::string>& m);
std::map<std::string, std::string> MapFromJson(const std::string& text);

// The subscription columns in the order ReadSubscription expects.
extern const char* const kSubscriptionColumns;
Subscription ReadSubscription(db::Stmt& s);

}  // namespace inferd::notify::internal
