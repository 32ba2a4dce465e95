#include "cli/context.h"

#include <sys/stat.h>

#include <cerrno>
#include <ctime>

#include <fmt/format.h>

namespace cfs::cli {

std::string ClustersDir(const Context& ctx) { return ctx.config.RegionDir() + "/clusters"; }
std::string ClusterDir(const Context& ctx, const std::string& id) { return ClustersDir(ctx) + "/" + id; }
std::string RunDir(const Context& ctx) { return ctx.config.home + "/run"; }

std::string ClusterArn(const Context& ctx, const std::string& id) {
  return fmt::format("arn:cipherfs:rds:{}:{}:cluster:{}", ctx.config.region, ctx.account, id);
}

Status MakeDirs(const std::string& path, mode_t mode) {
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string prefix = path.substr(0, pos);
    if (::mkdir(prefix.c_str(), mode) != 0 && errno != EEXIST) return Status::FromErrno(errno, "mkdir " + prefix);
  }
  return Status::Ok();
}

std::string FormatTime(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace cfs::cli
