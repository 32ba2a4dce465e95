// Context: what every cipherfs command works with -- the loaded config and
// the real implementations main.cc wires in (a KMS per region, the backing
// directory, the FUSE server, the unmount helper). Tests wire fakes.
// Thread safety: used by the one command thread.
#pragma once

#include <functional>
#include <iostream>
#include <memory>
#include <string>

#include "common/result.h"
#include "common/secret_bytes.h"
#include "config/config.h"
#include "fs/mount.h"
#include "keymgr/key_manager.h"
#include "store/backing.h"

namespace cfs::cli {

struct Context {
  config::Config config;
  std::string account;     // 12 digits (config::AccountIdForHome)
  bool json = false;       // --output json
  std::ostream* out = &std::cout;

  std::function<Result<std::unique_ptr<keymgr::KeyManager>>(const std::string& region)> open_kms;
  store::Backing* backing = nullptr;
  std::function<Status(store::Backing*, SecretBytes, const fs::MountOptions&)> serve_volume;
  // Asks the kernel to unmount a FUSE mount (fusermount3 -u).
  std::function<Status(const std::string& mountpoint)> fuse_unmount;
};

// region/clusters and region/clusters/<id>.
std::string ClustersDir(const Context& ctx);
std::string ClusterDir(const Context& ctx, const std::string& id);
// home/run: one lock file per live mount (mount_commands.cc).
std::string RunDir(const Context& ctx);
std::string ClusterArn(const Context& ctx, const std::string& id);

// mkdir -p with `mode` for the directories it creates.
Status MakeDirs(const std::string& path, mode_t mode);

// "2026-01-02T03:04:05Z" from unix seconds.
std::string FormatTime(int64_t unix_seconds);

}  // namespace cfs::cli
