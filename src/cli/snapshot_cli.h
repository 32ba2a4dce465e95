// Registers the snapshot-related subcommands on the cipherfs CLI11 app.
// Thread safety: call once while building the app.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

#include "cli/context.h"

namespace cfs::cli {

struct SnapshotCliHooks {
  std::function<void(CLI::App*)> add_common;                        // --region, --config, --output
  std::function<void(std::function<Status(Context&)>)> set_action;  // the command to run
};

// A leaf subcommand with an examples footer and the common options.
CLI::App* Leaf(CLI::App* parent, const SnapshotCliHooks& h, const std::string& name, const std::string& what,
               const std::string& examples);

void RegisterSnapshotCommands(CLI::App& app, CLI::App* cluster, const SnapshotCliHooks& hooks);

}  // namespace cfs::cli
