// Running a mount: in the foreground, or as a daemon whose parent waits
// until the child reports "mounted" (MountOptions::on_mounted) or fails,
// over a pipe. The daemon logs (ids only) to home/run/<region>.<id>.log and
// holds home/run/<pid>.mount for its lifetime.
// Thread safety: call from a single-threaded process (it forks).
#pragma once

#include <string>

#include "cli/context.h"
#include "fs/mount.h"

namespace cfs::cli {

struct DaemonPlan {
  Context* ctx = nullptr;
  std::string cluster_id;
  fs::MountOptions options;
  int writer_lock_fd = -1;  // the cluster's mount.lock (pid is written there), or -1
  bool foreground = false;
};

// Serves until unmounted (foreground) or until the daemon has mounted
// (background). Returns the error of a failed mount either way.
Status RunMountDaemon(DaemonPlan plan, SecretBytes data_key);

}  // namespace cfs::cli
