// The cipherfs command: the one place where the real implementations are
// built and wired together (PosixBacking, LocalKeyManager, fs::ServeVolume,
// fusermount3).
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include "cli/app.h"
#include "common/secret_bytes.h"
#include "fs/mount.h"
#include "keymgr/local_key_manager.h"
#include "store/backing.h"

namespace {

cfs::Result<std::unique_ptr<cfs::keymgr::KeyManager>> OpenLocalKms(const cfs::config::Config& config,
                                                                    const std::string& account,
                                                                    const std::string& region) {
  if (!cfs::config::IsValidRegionName(region)) {
    return cfs::InvalidArgument(fmt::format("'{}' is not a valid region name", region));
  }
  cfs::keymgr::LocalKeyManagerOptions o;
  o.kms_dir = config.RegionDir(region) + "/kms";
  o.region = region;
  o.account = account;
  o.caller_uid = ::geteuid();
  CFS_ASSIGN_OR_RETURN(auto kms, cfs::keymgr::LocalKeyManager::Open(o));
  return std::unique_ptr<cfs::keymgr::KeyManager>(std::move(kms));
}

cfs::Status FuseUnmount(const std::string& mountpoint) {
  pid_t pid = ::fork();
  if (pid < 0) return cfs::Status::FromErrno(errno, "fork");
  if (pid == 0) {
    ::execlp("fusermount3", "fusermount3", "-u", "--", mountpoint.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return cfs::Status::Ok();
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
    return cfs::FailedPrecondition("fusermount3 not found; install the fuse3 package");
  }
  return cfs::Unavailable(fmt::format("could not unmount {} (busy?); close the files open under it and retry",
                                      mountpoint));
}

}  // namespace

int main(int argc, char** argv) {
  cfs::DisableCoreDumps();  // data keys pass through this process
  static cfs::store::PosixBacking backing;
  cfs::cli::Wiring wiring;
  wiring.open_kms = OpenLocalKms;
  wiring.backing = &backing;
  wiring.serve_volume = cfs::fs::ServeVolume;
  wiring.fuse_unmount = FuseUnmount;
  return cfs::cli::RunCli(argc, argv, wiring);
}
