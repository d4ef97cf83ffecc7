// Instance types → resources: what an `ml.*` InstanceType stands for (vCPUs, memory, GPUs), from a
// built-in table of the common SageMaker hosting types, overridable per type in the configuration
// (`instance_types`). The docker runtime enforces the resources as container limits; the process
// runtime writes them into the instance's log header (it does not limit the process).
//
// A type the table does not know (the control plane already checked it is one of SageMaker's
// names) gets resources from its size: medium → 2 vCPUs, large → 2, xlarge → 4, Nxlarge → 4·N;
// 4 GiB of memory per vCPU; no GPU. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "common/result.h"

namespace boost::json {
class value;
}

namespace inferd::fleet {

struct InstanceResources {
  int vcpus = 2;
  int64_t memory_mib = 8192;
  int gpus = 0;
  bool operator==(const InstanceResources&) const = default;
};

// The built-in table (ml.t2, t3, m4, m5, m5d, m6i, c4, c5, c5d, c6i, r5, g4dn, g5, p3, inf1).
const std::map<std::string, InstanceResources>& BuiltinInstanceTypes();

// `overrides` first, then the built-in table, then the size rule above.
InstanceResources ResourcesFor(const std::string& instance_type,
                               const std::map<std::string, InstanceResources>& overrides);

// One line for logs: "ml.m5.xlarge: 4 vCPUs, 16384 MiB memory, 0 GPUs".
std::string Describe(const std::string& instance_type, const InstanceResources& r);

// The `instance_types` configuration value: {"ml.x.y": {"vcpu": 2, "memory_mib": 4096,
// "gpus": 0}}; a member left out keeps the built-in (or size-rule) value. kValidation naming the
// bad entry.
Result<std::map<std::string, InstanceResources>> InstanceTypesFromJson(const boost::json::value& v);

}  // namespace inferd::fleet
