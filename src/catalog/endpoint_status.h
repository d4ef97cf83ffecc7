// The endpoint lifecycle (spec §1.4) as an explicit state machine.
//
//   CreateEndpoint ─► Creating ──kFleetReady──► InService ◄───────────────┐
//                        └──kFleetFailed──► Failed (FailureReason)         │
//   InService ──kUpdateRequested──► Updating ──kFleetReady────────────────┘
//                                      └──kFleetFailed──► InService (old fleet kept, FailureReason)
//   any but Deleting ──kDeleteRequested──► Deleting ──(removed from the catalog)
//
// Control-plane calls only request transitions; kFleetReady / kFleetFailed are reported by the
// fleet reconciler (model-hosting component). Transition() is the one place a status changes.
#pragma once

#include <optional>
#include <string_view>

#include "common/result.h"

namespace inferd::catalog {

enum class EndpointStatus {
  kOutOfService,
  kCreating,
  kUpdating,
  kSystemUpdating,
  kRollingBack,
  kInService,
  kDeleting,
  kFailed,
  kUpdateRollbackFailed,
};

enum class EndpointEvent {
  kUpdateRequested,  // UpdateEndpoint / UpdateEndpointWeightsAndCapacities
  kDeleteRequested,  // DeleteEndpoint
  kFleetReady,       // every desired instance healthy
  kFleetFailed,      // the (new) fleet could not be brought up
};

std::string_view ToString(EndpointStatus status);
std::optional<EndpointStatus> ParseEndpointStatus(std::string_view text);
std::string_view ToString(EndpointEvent event);

// The status after `event` in `from`, or kInvalidState naming the illegal move. The message is for
// logs; API handlers phrase their own user-facing errors (e.g. "Cannot update in-progress
// endpoint").
Result<EndpointStatus> Transition(EndpointStatus from, EndpointEvent event);

}  // namespace inferd::catalog
