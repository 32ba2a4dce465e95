// Serving a volume over FUSE (libfuse3 low-level API, multi-threaded).
// This is the only header of fs/ the rest of cipherfs includes; libfuse
// headers stay inside fs/.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/secret_bytes.h"
#include "store/backing.h"
#include "store/data_store.h"

namespace cfs::fs {

// A volume being served, as a snapshot sees it (MountOptions::on_live).
// Thread safety: methods may be called from any thread while serving;
// PauseNamespace(true)/(false) pairs must not overlap.
class LiveMount {
 public:
  virtual ~LiveMount() = default;
  virtual store::DataStore& data() = 0;
  // pause: waits until no modifying FUSE operation (create, mkdir, unlink,
  // rename, link, symlink, setattr, write, fallocate, xattr changes...) is
  // in flight and holds new ones until PauseNamespace(false).
  virtual void PauseNamespace(bool pause) = 0;
  // Writes back the kernel's dirty pages of this mount (the writeback cache
  // holds write()s the daemon has not seen yet), so a snapshot taken next
  // holds every write that returned before it was asked for.
  virtual Status FlushKernelCache() = 0;
};

struct MountOptions {
  std::string volume_dir;            // holds tree/ and objects/
  std::string mountpoint;
  bool encrypted = true;             // false: plaintext volume, data_key unused
  bool read_only = false;
  bool allow_other = false;          // implies default_permissions
  bool debug = false;                // libfuse debug output
  unsigned max_threads = 16;
  uint32_t chunk_blocks = 256;
  std::vector<std::string> fuse_options;  // extra -o options, passed through
  // Called once the mount is live (e.g. to tell a waiting parent to exit).
  std::function<void()> on_mounted;
  // Key liveness (KMS key disabled, grant revoked...): polled every
  // key_check_interval; when it returns false the volume wipes its keys and
  // fails all I/O with EIO until unmounted.
  std::function<bool()> key_check;
  std::chrono::milliseconds key_check_interval{30000};
  // Called once serving starts with the live volume, and with nullptr
  // before the volume closes (snapshots of a mounted volume, stats).
  std::function<void(LiveMount*)> on_live;
};

// Opens the volume and serves it until it is unmounted (or a fatal error).
// `data_key` is consumed (wiped when the volume closes).
Status ServeVolume(store::Backing* backing, SecretBytes data_key, const MountOptions& options);

}  // namespace cfs::fs
