#include "catalog/endpoint_status.h"

#include <array>
#include <string>
#include <utility>

namespace inferd::catalog {
namespace {

constexpr std::array<std::pair<EndpointStatus, std::string_view>, 9> kNames{{
    {EndpointStatus::kOutOfService, "OutOfService"},
    {EndpointStatus::kCreating, "Creating"},
    {EndpointStatus::kUpdating, "Updating"},
    {EndpointStatus::kSystemUpdating, "SystemUpdating"},
    {EndpointStatus::kRollingBack, "RollingBack"},
    {EndpointStatus::kInService, "InService"},
    {EndpointStatus::kDeleting, "Deleting"},
    {EndpointStatus::kFailed, "Failed"},
    {EndpointStatus::kUpdateRollbackFailed, "UpdateRollbackFailed"},
}};

}  // namespace

std::string_view ToString(EndpointStatus status) {
  for (const auto& [s, name] : kNames) {
    if (s == status) return name;
  }
  return "Unknown";
}

std::optional<EndpointStatus> ParseEndpointStatus(std::string_view text) {
  for (const auto& [s, name] : kNames) {
    if (name == text) return s;
  }
  return std::nullopt;
}

std::string_view ToString(EndpointEvent event) {
  switch (event) {
    case EndpointEvent::kUpdateRequested:
      return "UpdateRequested";
    case EndpointEvent::kDeleteRequested:
      return "DeleteRequested";
    case EndpointEvent::kFleetReady:
      return "FleetReady";
    case EndpointEvent::kFleetFailed:
      return "FleetFailed";
  }
  return "Unknown";
}

Result<EndpointStatus> Transition(EndpointStatus from, EndpointEvent event) {
  using S = EndpointStatus;
  using E = EndpointEvent;
  switch (event) {
    case E::kDeleteRequested:
      if (from != S::kDeleting) return S::kDeleting;
      break;
    case E::kUpdateRequested:
      if (from == S::kInService) return S::kUpdating;
      break;
    case E::kFleetReady:
      if (from == S::kCreating || from == S::kUpdating || from == S::kSystemUpdating ||
          from == S::kRollingBack) {
        return S::kInService;
      }
      break;
    case E::kFleetFailed:
      if (from == S::kCreating) return S::kFailed;
      if (from == S::kUpdating || from == S::kRollingBack) return S::kInService;  // old fleet kept
      break;
  }
  return Error(Errc::kInvalidState, "illegal endpoint transition: " + std::string(ToString(event)) +
                                        " in status " + std::string(ToString(from)));
}

}  // namespace inferd::catalog
