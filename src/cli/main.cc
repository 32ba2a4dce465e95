// The cipherfs command: the one place where the real implementations are
// built and wired together (PosixBacking, the region KMS, fs::ServeVolume,
// fusermount3).
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include "cli/app.h"
#include "common/secret_bytes.h"
#include "fs/mount.h"
#include "cli/kmsd_command.h"
#include "store/backing.h"

namespace {

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
  wiring.open_kms = cfs::cli::OpenRegionKms;  // in process, or through $CIPHERFS_KMS_SOCKET
  wiring.backing = &backing;
  wiring.serve_volume = cfs::fs::ServeVolume;
  wiring.fuse_unmount = FuseUnmount;
  return cfs::cli::RunCli(argc, argv, wiring);
}
