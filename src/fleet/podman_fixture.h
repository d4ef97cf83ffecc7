// Test-only: a private Podman engine serving the Docker Engine API, and a test image built with
// no registry. `podman system service` runs with its own --root/--runroot/--tmpdir in a temp dir
// (hermetic, parallel-safe), runc as the OCI runtime (CONTAINERS_CONF; crun fails on these
// machines' hybrid cgroups). The image holds inferd-echo and the shared libraries it loads
// (copied from the host as `ldd` lists them), imported with `podman import` and ENTRYPOINT
// ["/inferd-echo"]. Podman missing or not starting is a test failure, not a skip.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fleet/docker_client.h"
#include "testing/child_process.h"

namespace inferd::fleet::testing {

class Podman {
 public:
  // Starts the engine under `dir` (created). Check ok() (and error()) before use.
  explicit Podman(const std::filesystem::path& dir) : dir_(dir) {
    namespace fs = std::filesystem;
    fs::create_directories(dir_);
    std::ofstream(dir_ / "containers.conf")
        << "[containers]\ndefault_ulimits = [\"nofile=4096:4096\", \"nproc=4096:4096\"]\n"
           "[engine]\nruntime = \"runc\"\n";
    socket_ = (dir_ / "podman.sock").string();
    std::vector<std::string> args = GlobalArgs();
    args.insert(args.end(), {"system", "service", "--time=0", "unix://" + socket_});
    service_ = std::make_unique<containers::testing::ChildProcess>(
        Which("podman"), args, std::map<std::string, std::string>{{"CONTAINERS_CONF", Conf()}});
    DockerClient client(socket_, std::chrono::seconds(5));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = client.Call("GET", "/_ping");
      if (r.ok() && r->status == 200) {
        ok_ = true;
        return;
      }
      if (service_->WaitForExit(std::chrono::milliseconds(50))) break;
    }
    error_ = "podman system service did not answer on " + socket_ + ": " + service_->Output();
  }
  ~Podman() {
    namespace fs = std::filesystem;
    if (ok_) (void)Run({"rm", "--all", "--force", "--time", "0"});
    service_->Signal(SIGTERM);
    service_->WaitForExit(std::chrono::seconds(10));
    // Whatever podman left mounted under the temp dir goes before the files.
    std::ifstream mounts("/proc/self/mounts");
    std::vector<std::string> under;
    std::string line;
    while (std::getline(mounts, line)) {
      std::istringstream fields(line);
      std::string source, target;
      fields >> source >> target;
      if (target.rfind(dir_.string(), 0) == 0) under.push_back(target);
    }
    for (auto it = under.rbegin(); it != under.rend(); ++it) ::umount2(it->c_str(), MNT_DETACH);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  const std::string& socket() const { return socket_; }

  // Runs `podman <global args> args...` (CONTAINERS_CONF set); its exit status and output.
  std::pair<int, std::string> Run(const std::vector<std::string>& args,
                                  const std::string& stdin_file = "") const {
    std::string cmd = "CONTAINERS_CONF=" + Quote(Conf()) + " " + Quote(Which("podman"));
    for (const auto& a : GlobalArgs()) cmd += " " + Quote(a);
    for (const auto& a : args) cmd += " " + Quote(a);
    cmd += stdin_file.empty() ? " </dev/null" : " <" + Quote(stdin_file);
    cmd += " 2>&1";
    return Shell(cmd);
  }

  // Imports an image `name` holding `binary` (at /<filename>) and the libraries it loads,
  // ENTRYPOINT ["/<filename>"]. Returns "" or what went wrong.
  std::string ImportBinaryImage(const std::filesystem::path& binary, const std::string& name) {
    namespace fs = std::filesystem;
    fs::path root = dir_ / ("rootfs-" + std::to_string(++images_));
    fs::create_directories(root / "opt/ml/model");
    fs::create_directories(root / "tmp");
    fs::copy_file(binary, root / binary.filename());
    auto [code, ldd] = Shell("ldd " + Quote(binary.string()));
    if (code != 0) return "ldd failed: " + ldd;
    std::istringstream lines(ldd);
    std::string line;
    while (std::getline(lines, line)) {
      auto slash = line.find('/');
      if (slash == std::string::npos) continue;
      std::string lib = line.substr(slash, line.find(' ', slash) - slash);
      fs::create_directories(root / fs::path(lib).relative_path().parent_path());
      std::error_code ec;
      fs::copy_file(fs::canonical(lib), root / fs::path(lib).relative_path(),
                    fs::copy_options::overwrite_existing, ec);
      if (ec) return "cannot copy " + lib + ": " + ec.message();
    }
    std::string tar = (dir_ / ("rootfs-" + std::to_string(images_) + ".tar")).string();
    auto [tar_code, tar_out] =
        Shell("tar -C " + Quote(root.string()) + " -cf " + Quote(tar) + " .");
    if (tar_code != 0) return "tar failed: " + tar_out;
    auto [imp, out] = Run(
        {"import", "--change", "ENTRYPOINT [\"/" + binary.filename().string() + "\"]", tar, name});
    return imp == 0 ? "" : "podman import failed: " + out;
  }

 private:
  std::string Conf() const { return (dir_ / "containers.conf").string(); }
  std::vector<std::string> GlobalArgs() const {
    return {"--root",           (dir_ / "root").string(),
            "--runroot",        (dir_ / "runroot").string(),
            "--tmpdir",         (dir_ / "tmp").string(),
            "--storage-driver", "overlay",
            "--cgroup-manager", "cgroupfs",
            "--events-backend", "file"};
  }
  static std::string Which(const std::string& program) {
    for (const char* dir : {"/usr/bin", "/usr/local/bin", "/bin"}) {
      std::string p = std::string(dir) + "/" + program;
      if (::access(p.c_str(), X_OK) == 0) return p;
    }
    return program;  // fails to start: the test reports the error
  }
  static std::string Quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
  }
  static std::pair<int, std::string> Shell(const std::string& cmd) {
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return {-1, "popen failed"};
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
    int status = ::pclose(p);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
  }

  std::filesystem::path dir_;
  std::string socket_;
  std::unique_ptr<containers::testing::ChildProcess> service_;
  bool ok_ = false;
  std::string error_;
  int images_ = 0;
};

}  // namespace inferd::fleet::testing
