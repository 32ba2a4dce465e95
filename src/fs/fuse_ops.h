// The libfuse low-level operation table of cipherfs: every handler is a
// few lines that call VolumeFs through Dispatch (admission, one reply).
// Thread safety: the handlers run on libfuse's worker threads concurrently.
#pragma once

#include <cstdlib>

#include "fs/fuse_include.h"
#include "fs/volume_fs.h"

namespace cfs::fs {

// Session-wide state handed to libfuse as userdata.
struct Session {
  VolumeFs* fs = nullptr;
  unsigned max_background = 64;
  bool writeback_cache = false;  // ask for FUSE_CAP_WRITEBACK_CACHE at INIT
  // Negotiate FUSE_HANDLE_KILLPRIV_V2 (kill_priv.h) at INIT; off with
  // CIPHERFS_NO_KILLPRIV_V2=1 in the daemon's environment.
  bool killpriv_v2 = std::getenv("CIPHERFS_NO_KILLPRIV_V2") == nullptr;
};

const fuse_lowlevel_ops& CipherfsOps();

}  // namespace cfs::fs
