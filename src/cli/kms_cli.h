// Registers `cipherfs kms ...` (every KMS subcommand, with the cloud CLI's
// option names) and `cipherfs kmsd` on the CLI11 app.
// Thread safety: call once while building the app.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

#include "cli/context.h"

namespace cfs::cli {

struct KmsCliHooks {
  std::function<void(CLI::App*)> add_common;  // --region, --config, --output
  // The command to run; `default_json`: print JSON unless --output text.
  std::function<void(std::function<Status(Context&)>, bool default_json)> set_action;
};

void RegisterKmsCommands(CLI::App& app, const KmsCliHooks& hooks);

}  // namespace cfs::cli
