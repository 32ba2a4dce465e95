// Config: where cipherfs keeps its state and the defaults it mounts with.
// Sources, lowest to highest precedence: built-in defaults, the YAML file
// ($CIPHERFS_HOME/config.yaml or --config PATH), the environment
// (CIPHERFS_HOME, CIPHERFS_REGION), command-line flags. A missing config
// file means defaults; a present but invalid one is an error naming the file,
// line and key (docs/cli.md describes the file).
// Thread safety: Config is a value; the loaders are reentrant.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace cfs::config {

// The region used when neither the config file, the environment nor a flag
// names one.
inline constexpr std::string_view kDefaultRegion = "local-1";
inline constexpr size_t kMaxConfigFileSize = 1 << 20;

// Mount defaults, applied unless a mount flag says otherwise.
struct MountDefaults {
  bool allow_other = false;
  unsigned threads = 16;
  std::chrono::milliseconds key_check_interval{30000};
  std::vector<std::string> fuse_options;  // extra -o options, e.g. "noatime"
};

struct Config {
  std::string home;              // absolute
  std::string config_file;       // the file read, or empty when none existed
  std::string default_region = std::string(kDefaultRegion);
  std::string region;            // the region this invocation works in
  std::map<std::string, std::string> region_paths;  // explicit region folders
  MountDefaults mount;

  // The folder of `region`: its configured path or home/regions/<region>.
  std::string RegionDir(const std::string& region_name) const;
  std::string RegionDir() const { return RegionDir(region); }
};

// What the process environment and the command line say; empty = unset.
struct Overrides {
  std::optional<std::string> home;         // CIPHERFS_HOME
  std::optional<std::string> env_region;   // CIPHERFS_REGION
  std::optional<std::string> config_path;  // --config
  std::optional<std::string> flag_region;  // --region
};

// Reads CIPHERFS_HOME and CIPHERFS_REGION from the environment.
Overrides OverridesFromEnvironment();

// /var/lib/cipherfs for root, $HOME/.local/share/cipherfs (or the passwd
// entry's home) otherwise.
std::string DefaultHome(uid_t euid);

// Loads the configuration. Errors: InvalidArgument for a malformed file or
// value (message "FILE:LINE:COL: KEY: problem"), NotFound when --config names
// a missing file, IoError when the file can't be read.
Result<Config> LoadConfig(const Overrides& overrides);

// Parses config YAML text; `file_name` appears in error messages. Fills
// everything but home/region, which LoadConfig resolves.
Result<Config> ParseConfig(std::string_view text, const std::string& file_name);

// A region name: 1-63 of [a-z0-9-], starting with a letter, no trailing '-'.
bool IsValidRegionName(std::string_view name);

// The account id of a home: 12 decimal digits derived from a SHA-256 of the
// home's absolute path (docs/cli.md). Stable while the home stays put.
std::string AccountIdForHome(const std::string& home);

}  // namespace cfs::config
