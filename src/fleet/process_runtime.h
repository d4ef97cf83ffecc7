// ProcessRuntime: runs an image's model server as a local child process (the image maps to a
// command in FleetOptions::image_runtimes): `<command> serve` in <work_dir>, listening on a free
// loopback port (SAGEMAKER_BIND_TO_PORT, SAGEMAKER_BIND_HOST=127.0.0.1), SM_MODEL_DIR = the
// extracted artifact, the container's Environment passed verbatim over inferd's environment.
//
// The child runs in its own process group with PR_SET_PDEATHSIG=SIGKILL (it dies with the thread
// that started it: start instances from one long-lived thread), stdout and stderr appended to
// <work_dir>/log after a header line naming the instance type's resources, which this runtime
// reports but does not enforce. Stop: SIGTERM to the group, SIGKILL after the grace period.
#pragma once

#include "fleet/instance.h"

namespace inferd::fleet {

class ProcessRuntime final : public InstanceRuntime {
 public:
  // The command's path ("DeployedImages.ResolvedImage" shows it).
  Result<std::string> PrepareImage(const InstanceSpec& spec) override;
  // kInternal when fork/exec setup fails (a missing command shows up as an exit with code 127
  // and a message in the log).
  Result<std::unique_ptr<Instance>> Start(const InstanceSpec& spec) override;
};

// A free TCP port on 127.0.0.1 (bound and released: another process may take it first).
Result<uint16_t> FreeLoopbackPort();

}  // namespace inferd::fleet
