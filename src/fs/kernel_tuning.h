// Kernel-side tuning of a FUSE mount that the mount protocol cannot carry:
// the backing-device readahead window of the mount's superblock.
// Thread safety: stateless free functions, safe to call from any thread.
#pragma once

#include <string>

#include "common/result.h"

namespace cfs::fs {

// "major:minor" of the file system mounted at `mountpoint`, read from
// /proc/self/mountinfo (never touches the mount itself, so it is safe to
// call before the FUSE loop answers INIT). kNotFound if not mounted.
Result<std::string> MountDeviceId(const std::string& mountpoint);

// Raises the readahead window of the mount at `mountpoint` to `kib` KiB
// (/sys/class/bdi/<major:minor>/read_ahead_kb). The kernel starts a FUSE
// superblock at 128 KiB whatever max_readahead the daemon asks for, so
// sequential reads arrive as 128 KiB requests until this is raised.
// Needs root; callers treat an error as "left at the kernel default".
Status SetMountReadahead(const std::string& mountpoint, unsigned kib);

}  // namespace cfs::fs
