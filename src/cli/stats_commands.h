// `cipherfs stats MOUNTPOINT`: the counters of the daemon serving a mount
// (bytes read and written, blocks encrypted and decrypted, authentication
// failures, copy-on-write breaks, torn blocks repaired, dirty-log commits),
// asked over the daemon's control socket (cli/control.h, op "stats").
// Thread safety: called once per process from the command thread.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "cli/context.h"
#include "cli/snapshot_cli.h"

namespace cfs::cli {

// Prints the counters of the daemon serving `mountpoint` (text: one
// "name value" line each; --output json: {"Mountpoint", "Cluster",
// "Region", "Counters": {...}}). NotFound if no live cipherfs daemon of this
// CIPHERFS_HOME serves it; Unavailable if the daemon does not answer (a
// read-only or snapshot mount has no control channel).
Status Stats(Context& ctx, const std::string& mountpoint);

// Registers `cipherfs stats MOUNTPOINT` (same hooks as the snapshot commands).
void RegisterStatsCommand(CLI::App& app, const SnapshotCliHooks& hooks);

}  // namespace cfs::cli
