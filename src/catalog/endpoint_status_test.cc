#include "catalog/endpoint_status.h"

#include <gtest/gtest.h>

namespace inferd::catalog {
namespace {

using S = EndpointStatus;
using E = EndpointEvent;

S Next(S from, E ev) {
  auto r = Transition(from, ev);
  EXPECT_TRUE(r.ok()) << ToString(from) << " + " << ToString(ev);
  return r.ok() ? *r : from;
}

TEST(EndpointStatus, CreateSucceedsOrFails) {
  EXPECT_EQ(Next(S::kCreating, E::kFleetReady), S::kInService);
  EXPECT_EQ(Next(S::kCreating, E::kFleetFailed), S::kFailed);
}

TEST(EndpointStatus, UpdateOnlyFromInServiceAndRollsBackToInService) {
  EXPECT_EQ(Next(S::kInService, E::kUpdateRequested), S::kUpdating);
  EXPECT_EQ(Next(S::kUpdating, E::kFleetReady), S::kInService);
  EXPECT_EQ(Next(S::kUpdating, E::kFleetFailed), S::kInService);
  for (S s : {S::kCreating, S::kUpdating, S::kDeleting, S::kFailed}) {
    auto r = Transition(s, E::kUpdateRequested);
    ASSERT_FALSE(r.ok()) << ToString(s);
    EXPECT_EQ(r.error().code, Errc::kInvalidState);
  }
}

TEST(EndpointStatus, DeleteFromAnyStatusButDeleting) {
  for (S s : {S::kCreating, S::kUpdating, S::kInService, S::kFailed}) {
    EXPECT_EQ(Next(s, E::kDeleteRequested), S::kDeleting);
  }
  EXPECT_FALSE(Transition(S::kDeleting, E::kDeleteRequested).ok());
  EXPECT_FALSE(Transition(S::kDeleting, E::kFleetReady).ok());
  EXPECT_FALSE(Transition(S::kInService, E::kFleetFailed).ok());
}

TEST(EndpointStatus, NamesRoundTrip) {
  for (S s : {S::kOutOfService, S::kCreating, S::kUpdating, S::kSystemUpdating, S::kRollingBack,
              S::kInService, S::kDeleting, S::kFailed, S::kUpdateRollbackFailed}) {
    EXPECT_EQ(ParseEndpointStatus(ToString(s)), s);
  }
  EXPECT_FALSE(ParseEndpointStatus("inservice").has_value());
}

}  // namespace
}  // namespace inferd::catalog
