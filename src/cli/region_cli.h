// Registers the region commands on the cipherfs CLI11 app: `snapshot copy`
// and `replica create|describe|ship|mount|promote` (region_commands.h,
// replica_commands.h). app.cc calls RegisterRegionCommands after the
// snapshot commands exist.
// Thread safety: call once while building the app.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/snapshot_cli.h"

namespace cfs::cli {

void RegisterRegionCommands(CLI::App& app, const SnapshotCliHooks& hooks);

}  // namespace cfs::cli
