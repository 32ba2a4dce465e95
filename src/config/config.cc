#include "config/config.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>

#include <fmt/format.h>

#include "common/atomic_file.h"
#include "config/yaml_checked.h"

namespace cfs::config {
namespace {

std::optional<std::string> Env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

// "30s", "500ms", "2m" or a bare number of seconds.
std::optional<std::chrono::milliseconds> ParseDuration(const std::string& s) {
  size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
  if (digits == 0 || digits > 9) return std::nullopt;
  uint64_t n = std::stoull(s.substr(0, digits));
  std::string unit = s.substr(digits);
  if (unit == "ms") return std::chrono::milliseconds(n);
  if (unit == "s" || unit.empty()) return std::chrono::milliseconds(n * 1000);
  if (unit == "m") return std::chrono::milliseconds(n * 60000);
  return std::nullopt;
}

Status ParseMount(const YamlReader& r, const YAML::Node& node, MountDefaults* m) {
  CFS_RETURN_IF_ERROR(r.CheckKeys(node, "mount", {"allow_other", "threads", "key_check_interval", "options"}));
  if (node["allow_other"]) {
    CFS_ASSIGN_OR_RETURN(m->allow_other, r.Bool(node["allow_other"], "mount.allow_other"));
  }
  if (node["threads"]) {
    CFS_ASSIGN_OR_RETURN(uint64_t t, r.Uint(node["threads"], "mount.threads", 1, 1024));
    m->threads = static_cast<unsigned>(t);
  }
  if (const YAML::Node k = node["key_check_interval"]) {
    auto d = k.IsScalar() ? ParseDuration(k.Scalar()) : std::nullopt;
    if (!d || *d < std::chrono::milliseconds(100) || *d > std::chrono::hours(24)) {
      return r.Error(k, "mount.key_check_interval", "must be a duration from 100ms to 24h, like 30s or 500ms");
    }
    m->key_check_interval = *d;
  }
  if (const YAML::Node o = node["options"]) {
    if (!o.IsSequence()) return r.Error(o, "mount.options", "must be a list of strings");
    for (const auto& item : o) {
      CFS_ASSIGN_OR_RETURN(std::string opt, r.String(item, "mount.options"));
      if (opt.empty() || opt.find(',') != std::string::npos) {
        return r.Error(item, "mount.options", "each option must be one non-empty word without commas");
      }
      m->fuse_options.push_back(opt);
    }
  }
  return Status::Ok();
}

Status ParseRegions(const YamlReader& r, const YAML::Node& node, Config* c) {
  CFS_RETURN_IF_ERROR(r.ExpectMap(node, "regions"));
  for (const auto& kv : node) {
    if (!kv.first.IsScalar() || !IsValidRegionName(kv.first.Scalar())) {
      return r.Error(kv.first, "regions", "region names are 1-63 of a-z, 0-9 and '-', starting with a letter");
    }
    std::string name = kv.first.Scalar();
    std::string key = "regions." + name;
    CFS_RETURN_IF_ERROR(r.CheckKeys(kv.second, key, {"path"}));
    if (!kv.second["path"]) return r.Error(kv.second, key, "needs a path");
    CFS_ASSIGN_OR_RETURN(std::string path, r.String(kv.second["path"], key + ".path"));
    if (path.empty() || path[0] != '/') return r.Error(kv.second["path"], key + ".path", "must be an absolute path");
    if (!c->region_paths.emplace(name, path).second) return r.Error(kv.first, key, "duplicate region");
  }
  return Status::Ok();
}

}  // namespace

std::string Config::RegionDir(const std::string& region_name) const {
  auto it = region_paths.find(region_name);
  if (it != region_paths.end()) return it->second;
  return home + "/regions/" + region_name;
}

bool IsValidRegionName(std::string_view name) {
  if (name.empty() || name.size() > 63 || name.front() < 'a' || name.front() > 'z' || name.back() == '-') {
    return false;
  }
  for (char ch : name) {
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-')) return false;
  }
  return true;
}

Overrides OverridesFromEnvironment() {
  Overrides o;
  o.home = Env("CIPHERFS_HOME");
  o.env_region = Env("CIPHERFS_REGION");
  return o;
}

std::string DefaultHome(uid_t euid) {
  if (euid == 0) return "/var/lib/cipherfs";
  std::optional<std::string> home = Env("HOME");
  if (!home) {
    struct passwd pw, *result = nullptr;
    char buf[4096];
    if (getpwuid_r(euid, &pw, buf, sizeof buf, &result) == 0 && result != nullptr) home = pw.pw_dir;
  }
  return home.value_or("/tmp") + "/.local/share/cipherfs";
}

Result<Config> ParseConfig(std::string_view text, const std::string& file_name) {
  YamlReader r(file_name);
  CFS_ASSIGN_OR_RETURN(YAML::Node root, r.Parse(text, /*allow_empty=*/true));
  Config c;
  if (root.IsNull()) return c;
  CFS_RETURN_IF_ERROR(r.CheckKeys(root, "", {"version", "default_region", "regions", "mount"}));
  if (root["version"]) {
    CFS_ASSIGN_OR_RETURN(uint64_t v, r.Uint(root["version"], "version", 1, 1000000));
    if (v != 1) return r.Error(root["version"], "version", fmt::format("config version {} is newer than this cipherfs supports (1)", v));
  }
  if (const YAML::Node d = root["default_region"]) {
    CFS_ASSIGN_OR_RETURN(c.default_region, r.String(d, "default_region"));
    if (!IsValidRegionName(c.default_region)) {
      return r.Error(d, "default_region", "region names are 1-63 of a-z, 0-9 and '-', starting with a letter");
    }
  }
  if (root["regions"]) CFS_RETURN_IF_ERROR(ParseRegions(r, root["regions"], &c));
  if (root["mount"]) CFS_RETURN_IF_ERROR(ParseMount(r, root["mount"], &c.mount));
  return c;
}

Result<Config> LoadConfig(const Overrides& o) {
  std::string home = o.home.value_or(DefaultHome(::geteuid()));
  if (home.empty() || home[0] != '/') {
    return InvalidArgument(fmt::format("CIPHERFS_HOME must be an absolute path, not '{}'", home));
  }
  while (home.size() > 1 && home.back() == '/') home.pop_back();
  std::string file = o.config_path.value_or(home + "/config.yaml");
  Config c;
  Result<std::string> text = ReadSmallFile(file, kMaxConfigFileSize);
  if (text.ok()) {
    CFS_ASSIGN_OR_RETURN(c, ParseConfig(*text, file));
    c.config_file = file;
  } else if (text.status().code() != Code::kNotFound || o.config_path) {
    return text.status().WithContext("config file");
  }
  c.home = home;
  c.region = o.flag_region ? *o.flag_region : o.env_region ? *o.env_region : c.default_region;
  if (!IsValidRegionName(c.region)) {
    return InvalidArgument(fmt::format("region '{}' is not a valid region name (1-63 of a-z, 0-9 and '-')", c.region));
  }
  return c;
}

std::string AccountIdForHome(const std::string& home) {
  // FNV-1a 64 over a label and the path: an identifier, not a secret.
  uint64_t h = 1469598103934665603ull;
  for (char ch : "cipherfs-account:" + home) {
    h ^= static_cast<uint8_t>(ch);
    h *= 1099511628211ull;
  }
  return fmt::format("{:012d}", h % 1000000000000ull);
}

}  // namespace cfs::config
