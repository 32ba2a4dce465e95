// The cipherfs command line (CLI11): parses arguments, loads the config,
// builds the Context from the real implementations main.cc passes in, runs
// one command, prints errors as one line, and returns the exit code.
// Thread safety: call once from main.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "cli/context.h"

namespace cfs::cli {

struct Wiring {
  // The key manager of `region` (its folder from the config).
  std::function<Result<std::unique_ptr<keymgr::KeyManager>>(const config::Config& config,
                                                            const std::string& account,
                                                            const std::string& region)>
      open_kms;
  store::Backing* backing = nullptr;
  std::function<Status(store::Backing*, SecretBytes, const fs::MountOptions&)> serve_volume;
  std::function<Status(const std::string& mountpoint)> fuse_unmount;
};

int RunCli(int argc, char** argv, const Wiring& wiring);

}  // namespace cfs::cli
