#include "http/message.h"

#include <algorithm>
#include <cctype>

namespace inferd::http {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

void Headers::Add(std::string name, std::string value) {
  items_.push_back({std::move(name), std::move(value)});
}

void Headers::Set(std::string_view name, std::string value) {
  Remove(name);
  items_.push_back({std::string(name), std::move(value)});
}

void Headers::Remove(std::string_view name) {
  std::erase_if(items_, [&](const Header& h) { return EqualsIgnoreCase(h.name, name); });
}

std::optional<std::string_view> Headers::Get(std::string_view name) const {
  for (const auto& h : items_) {
    if (EqualsIgnoreCase(h.name, name)) return std::string_view(h.value);
  }
  return std::nullopt;
}

}  // namespace inferd::http
