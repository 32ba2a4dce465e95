// `cipherfs kmsd` (serve a region's KMS on a Unix socket, kms_server.h) and
// the opening of a region's KMS for every other command: through the kmsd
// named by $CIPHERFS_KMS_SOCKET when set, else in process from the region's
// key store (root key from root.key, or from the passphrase in the file
// $CIPHERFS_KMS_PASSPHRASE_FILE).
// Thread safety: one command per process.
#pragma once

#include <memory>
#include <string>

#include "cli/kms_cli.h"
#include "config/config.h"
#include "keymgr/key_manager.h"
#include "keymgr/local_key_manager.h"

namespace cfs::cli {

// The Wiring::open_kms of the real cipherfs command.
Result<std::unique_ptr<keymgr::KeyManager>> OpenRegionKms(const config::Config& config, const std::string& account,
                                                          const std::string& region);

// The in-process KMS of `region` (what kmsd serves).
Result<std::unique_ptr<keymgr::LocalKeyManager>> OpenLocalRegionKms(const config::Config& config,
                                                                    const std::string& account,
                                                                    const std::string& region,
                                                                    const std::optional<std::string>& passphrase_file);

void RegisterKmsdCommand(CLI::App& app, const KmsCliHooks& hooks);

}  // namespace cfs::cli
