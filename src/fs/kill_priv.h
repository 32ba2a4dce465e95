// FUSE_HANDLE_KILLPRIV_V2 for libfuse 3.14, which cannot negotiate it.
// Without it the kernel asks the daemon for security.capability before
// EVERY write(2) (file_remove_privs: one extra round trip per database
// page or WAL write); with it the superblock gets SB_NOSEC and the kernel
// stops asking once it knows a file has no suid/sgid bit. In exchange the
// file system kills suid/sgid (and file capabilities) itself on a write,
// truncate or truncating open marked FUSE_*_KILL_SUIDGID by the kernel
// (which has checked CAP_FSETID of the caller).
// Done through libfuse's custom I/O hooks on the session's /dev/fuse fd:
// the read hook sees each request before libfuse parses it (INIT offers,
// kill flags), the writev hook adds the flag to the INIT reply.
// Thread safety: the hooks run on every worker thread; their state is
// atomic.
#pragma once

#include <cstdint>

#include "fs/fuse_include.h"

namespace cfs::fs {

// What a kill request does: drop S_ISUID, S_ISGID (if group-executable)
// and security.capability of node `nodeid`, and make the kernel forget the
// attributes it cached. Runs on the reader thread before the request.
using KillPrivFn = void (*)(void* ctx, uint64_t nodeid);

// Installs the hooks on `se` (keeps its fd): before the session loop
// starts (`in_init` false), or from the Init op (`in_init` true: INIT was
// read already, its reply is the next message written). From Init, a
// worker already blocked in read() gets one more request unhooked; the
// first request after INIT is never a write (a file must be looked up and
// opened first), so no kill flag is missed. False if libfuse refused the
// hooks (then nothing changes: the kernel keeps asking).
bool InstallKillPrivV2(fuse_session* se, KillPrivFn kill, void* ctx, bool in_init);

// Whether the kernel accepted FUSE_HANDLE_KILLPRIV_V2 on some session of
// this process (for stats and tests).
bool KillPrivV2Negotiated();

}  // namespace cfs::fs
