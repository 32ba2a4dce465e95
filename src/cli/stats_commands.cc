#include "cli/stats_commands.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <memory>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/control.h"
#include "common/atomic_file.h"

namespace cfs::cli {
namespace {

// A live daemon's run record: home/run/<pid>.mount = "mountpoint\nregion\ncluster\n",
// flocked by the daemon while it serves.
struct RunRecord {
  std::string mountpoint, region, cluster;
};

bool Held(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  return held;
}

Result<RunRecord> FindLiveRecord(const Context& ctx, const std::string& mountpoint) {
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(RunDir(ctx).c_str()), ::closedir);
  if (dir != nullptr) {
    while (dirent* e = ::readdir(dir.get())) {
      std::string name = e->d_name;
      if (name.size() < 7 || name.compare(name.size() - 6, 6, ".mount") != 0) continue;
      std::string path = RunDir(ctx) + "/" + name;
      Result<std::string> text = ReadSmallFile(path, 8192);
      if (!text.ok()) continue;
      std::istringstream in(*text);
      RunRecord r;
      if (!std::getline(in, r.mountpoint) || !std::getline(in, r.region) || !std::getline(in, r.cluster)) continue;
      if (r.mountpoint == mountpoint && Held(path)) return r;
    }
  }
  return NotFound(fmt::format("no cipherfs daemon of {} serves {} (is it mounted, and is CIPHERFS_HOME the one "
                              "it was mounted with?)",
                              ctx.config.home, mountpoint));
}

Result<std::string> Resolve(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) != nullptr) return std::string(buf);
  if (errno == ENOTCONN) {
    return FailedPrecondition(fmt::format("{} is a dead FUSE mount (its daemon is gone); nothing to ask", path));
  }
  return Status::FromErrno(errno, "mountpoint " + path);
}

// Counter names in a fixed order (the JSON object is sorted by name).
constexpr const char* kCounters[] = {"bytes_read",   "bytes_written", "blocks_encrypted",     "blocks_decrypted",
                                     "auth_failures", "cow_breaks",   "torn_blocks_repaired", "dirty_log_commits",
                                     "syncs_ahead",   "syncs_joined", "chunk_syncs_in_place", "chunk_syncs_full"};

}  // namespace

Status Stats(Context& ctx, const std::string& mountpoint) {
  CFS_ASSIGN_OR_RETURN(std::string mp, Resolve(mountpoint));
  CFS_ASSIGN_OR_RETURN(RunRecord rec, FindLiveRecord(ctx, mp));
  std::string socket = ctx.config.RegionDir(rec.region) + "/clusters/" + rec.cluster + "/" + kControlSocketName;
  CFS_ASSIGN_OR_RETURN(nlohmann::json answer, ControlCall(socket, {{"op", "stats"}}));
  const nlohmann::json& counters = answer["counters"];
  if (!counters.is_object()) return DataLoss("mount daemon answered stats without counters");
  if (ctx.json) {
    nlohmann::json out = {{"Mountpoint", mp}, {"Cluster", rec.cluster}, {"Region", rec.region}, {"Counters", counters}};
    *ctx.out << out.dump(2) << "\n";
    return Status::Ok();
  }
  *ctx.out << fmt::format("{:<22} {}\n{:<22} {}\n", "mountpoint", mp, "cluster", rec.cluster);
  for (const char* name : kCounters) {
    if (counters.contains(name)) *ctx.out << fmt::format("{:<22} {}\n", name, counters[name].dump());
  }
  for (const auto& [name, value] : counters.items()) {  // counters added later by the daemon
    bool known = false;
    for (const char* k : kCounters) known |= name == k;
    if (!known) *ctx.out << fmt::format("{:<22} {}\n", name, value.dump());
  }
  return Status::Ok();
}

void RegisterStatsCommand(CLI::App& app, const SnapshotCliHooks& hooks) {
  CLI::App* sub = app.add_subcommand("stats", "Show the counters of the daemon serving a mount");
  sub->footer(
      "Examples:\n  cipherfs stats /srv/orders\n  cipherfs stats /srv/orders --output json\n"
      "Counters: bytes_read, bytes_written, blocks_encrypted, blocks_decrypted, auth_failures,\n"
      "cow_breaks, torn_blocks_repaired, dirty_log_commits, syncs_ahead (chunk syncs started\n"
      "right after a log write, before its fdatasync arrives), syncs_joined (fdatasyncs answered\n"
      "by such a sync), chunk_syncs_in_place (chunk files made durable by writing back their pages\n"
      "and flushing the disk, without their metadata: every change since the last full sync\n"
      "overwrote written blocks on ext4), chunk_syncs_full (chunk fdatasyncs); all since the\n"
      "daemon started.");
  hooks.add_common(sub);
  auto mountpoint = std::make_shared<std::string>();
  sub->add_option("MOUNTPOINT", *mountpoint, "a cipherfs mountpoint")->required();
  sub->callback([hooks, mountpoint] { hooks.set_action([mountpoint](Context& c) { return Stats(c, *mountpoint); }); });
}

}  // namespace cfs::cli
