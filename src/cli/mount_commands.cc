#include "cli/mount_commands.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "cli/cluster_commands.h"
#include "cli/cluster_key_state.h"
#include "cli/exit_codes.h"
#include "cli/control.h"
#include "cli/mount_daemon.h"
#include "cli/snapshot_commands.h"
#include "common/atomic_file.h"
#include "snapshot/snapshot.h"
#include "common/log.h"
#include "keymgr/kms_error.h"

namespace cfs::cli {
namespace {

Result<std::string> ResolveMountpoint(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) != nullptr) return std::string(buf);
  if (errno == ENOENT) {
    return NotFound(fmt::format("mountpoint {} does not exist; create it with: mkdir -p {}", path, path));
  }
  if (errno == ENOTCONN) {
    return FailedPrecondition(fmt::format("mountpoint {} is a dead FUSE mount; run: fusermount3 -u {}", path, path));
  }
  return Status::FromErrno(errno, "mountpoint " + path);
}

std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool ok = true;
      for (size_t k = 1; k <= 3; ++k) {
        char c = s[i + k];
        ok &= c >= '0' && c <= '7';
        v = v * 8 + (c - '0');
      }
      if (ok) {
        out.push_back(static_cast<char>(v));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

// Splits -o values ("a,b" and repeated -o) into allow_other / ro / debug and
// pass-through options.
Status ApplyOptions(const std::vector<std::string>& values, fs::MountOptions* o) {
  for (const std::string& value : values) {
    std::stringstream ss(value);
    for (std::string opt; std::getline(ss, opt, ',');) {
      if (opt.empty()) continue;
      if (opt == "allow_other") o->allow_other = true;
      else if (opt == "ro") o->read_only = true;
      else if (opt == "rw") o->read_only = false;
      else if (opt == "debug") o->debug = true;
      else if (opt.rfind("fsname=", 0) == 0 || opt.rfind("subtype=", 0) == 0) {
        return InvalidArgument(fmt::format("-o {} is set by cipherfs itself; remove it", opt));
      } else {
        o->fuse_options.push_back(opt);
      }
    }
  }
  return Status::Ok();
}

// The holder recorded in a mount.lock ("pid\nmountpoint\n"), empty fields
// if unreadable.
struct LockHolder {
  std::string pid;
  std::string mountpoint;
};
LockHolder ReadLockHolder(const std::string& path) {
  Result<std::string> read = ReadSmallFile(path, 4096);
  std::istringstream text(read.ok() ? *read : "");
  LockHolder h;
  std::getline(text, h.pid);
  std::getline(text, h.mountpoint);
  return h;
}

// A daemon that is alive but whose mountpoint is no longer a cipherfs mount
// has been unmounted and is closing the volume: its lock goes soon.
bool HolderIsExiting(const LockHolder& h) {
  if (h.pid.empty() || h.mountpoint.empty()) return false;
  char* end = nullptr;
  long pid = std::strtol(h.pid.c_str(), &end, 10);
  if (*end != '\0' || pid <= 0) return false;
  bool alive = ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
  return alive && MountedFsType(h.mountpoint) != "fuse.cipherfs";
}

// Takes the cluster's writer lock, or says who holds it. A previous daemon
// still exiting after its unmount (umount(8), fusermount3 -u, or `cipherfs
// umount` from another CIPHERFS_HOME do not wait for it) is waited for, at
// most kExitWaitMs.
Result<FileLock> TakeWriterLock(const Context& ctx, const std::string& id) {
  constexpr int kExitWaitMs = 60 * 1000;
  constexpr int kPollMs = 50;
  std::string path = ClusterDir(ctx, id) + "/mount.lock";
  for (int waited = 0;; waited += kPollMs) {
    Result<FileLock> lock = FileLock::TryAcquire(path, FileLock::Mode::kExclusive);
    if (lock.ok() || lock.status().code() != Code::kUnavailable) return lock;
    LockHolder h = ReadLockHolder(path);
    if (!HolderIsExiting(h)) {
      return Unavailable(fmt::format("cluster {} is already mounted (pid {}); unmount it first, or mount with "
                                     "--read-only for a reader",
                                     id, h.pid.empty() ? "unknown" : h.pid));
    }
    if (waited >= kExitWaitMs) {
      return Unavailable(fmt::format("cluster {} is still held by its previous daemon (pid {}), unmounted from {} "
                                     "but not exited after {} s; check that process, then mount again",
                                     id, h.pid, h.mountpoint, kExitWaitMs / 1000));
    }
    if (waited == 0) log::Info("cli: cluster {}: waiting for the unmounted daemon {} to exit", id, h.pid);
    ::usleep(kPollMs * 1000);
  }
}

Result<SecretBytes> UnwrapDataKey(keymgr::KeyManager* kms, const config::VolumeDescriptor& d) {
  Result<keymgr::DecryptResult> r =
      kms->Decrypt(d.wrapped_data_key, ClusterEncryptionContext(snapshot::DataKeyContextArn(d)), d.kms_key_arn);
  if (!r.ok()) {
    return WithHint(r.status(), fmt::format("cluster {} can't be mounted until its key {} is usable", d.id,
                                            d.kms_key_arn));
  }
  return std::move(r->plaintext);
}

// true while the key is usable; a transient failure to ask keeps the mount.
std::function<bool()> KeyCheck(std::shared_ptr<keymgr::KeyManager> kms, std::string key_arn) {
  return [kms = std::move(kms), key_arn = std::move(key_arn)] {
    Result<keymgr::KeyMetadata> m = kms->DescribeKey(key_arn);
    if (m.ok()) return m->enabled;
    if (keymgr::KmsErrorOf(m.status())) return false;
    log::Warn("cli: key check of {} failed: {}", key_arn, m.status().ToString());
    return true;
  };
}

// Is the flock on a run record still held (its daemon alive)?
bool RecordHeld(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  return held;
}

// The run record of the daemon serving `mountpoint`, or empty.
std::string FindRunRecord(const Context& ctx, const std::string& mountpoint) {
  DIR* dir = ::opendir(RunDir(ctx).c_str());
  if (dir == nullptr) return "";
  std::string found;
  while (dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name.size() < 7 || name.substr(name.size() - 6) != ".mount") continue;
    std::string path = RunDir(ctx) + "/" + name;
    Result<std::string> read = ReadSmallFile(path, 8192);
    std::string text = read.ok() ? *read : "";
    if (text.substr(0, text.find('\n')) == mountpoint && RecordHeld(path)) found = path;
  }
  ::closedir(dir);
  return found;
}

}  // namespace

std::string MountedFsType(const std::string& mountpoint) {
  std::ifstream in("/proc/self/mountinfo");
  std::string found;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, devs, root, point;
    fields >> id >> parent >> devs >> root >> point;
    if (Unescape(point) != mountpoint) continue;
    size_t sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    std::istringstream rest(line.substr(sep + 3));
    rest >> found;  // the last mount on a path wins
  }
  return found;
}

Status CheckMountpoint(const std::string& mp) {
  struct stat st, parent;
  if (::stat(mp.c_str(), &st) != 0) return Status::FromErrno(errno, "mountpoint " + mp);
  if (!S_ISDIR(st.st_mode)) {
    return FailedPrecondition(fmt::format("mountpoint {} is not a directory; mount on an empty directory", mp));
  }
  if (::stat((mp + "/..").c_str(), &parent) != 0) return Status::FromErrno(errno, "parent of " + mp);
  if (st.st_dev != parent.st_dev || st.st_ino == parent.st_ino || !MountedFsType(mp).empty()) {
    return Unavailable(fmt::format("mountpoint {} is already a mount point; unmount it or choose another directory",
                                   mp));
  }
  DIR* dir = ::opendir(mp.c_str());
  if (dir == nullptr) return Status::FromErrno(errno, "open mountpoint " + mp);
  bool empty = true;
  while (dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") empty = false;
  }
  ::closedir(dir);
  if (!empty) return FailedPrecondition(fmt::format("mountpoint {} is not empty; mount on an empty directory", mp));
  return Status::Ok();
}

Status Mount(Context& ctx, const MountArgs& args) {
  CFS_ASSIGN_OR_RETURN(config::VolumeDescriptor d, args.snapshot ? LoadSnapshot(ctx, args.id) : LoadCluster(ctx, args.id));
  if (!args.snapshot) {
    CFS_ASSIGN_OR_RETURN(d, RefreshClusterKeyState(ctx, std::move(d)));
  }
  if (d.status.rfind("inaccessible-encryption-credentials", 0) == 0) {
    return FailedPrecondition(fmt::format("cluster {} is {}; make its key usable and run: cipherfs cluster start --id {}",
                                          d.id, d.status, d.id));
  }
  if (d.status != "available") {
    return FailedPrecondition(fmt::format("cluster {} is {}, not available; wait or check: cipherfs cluster describe "
                                          "--id {}", d.id, d.status, d.id));
  }
  fs::MountOptions o;
  o.volume_dir = args.snapshot ? SnapshotDir(ctx, d.id) : ClusterDir(ctx, d.id);
  o.encrypted = d.storage_encrypted;
  o.read_only = args.read_only || args.snapshot;
  o.allow_other = ctx.config.mount.allow_other;
  o.max_threads = ctx.config.mount.threads;
  o.chunk_blocks = d.chunk_blocks;
  o.fuse_options = ctx.config.mount.fuse_options;
  o.key_check_interval = ctx.config.mount.key_check_interval;
  CFS_RETURN_IF_ERROR(ApplyOptions(args.options, &o));
  CFS_ASSIGN_OR_RETURN(o.mountpoint, ResolveMountpoint(args.mountpoint));
  CFS_RETURN_IF_ERROR(CheckMountpoint(o.mountpoint));
  std::optional<FileLock> writer;
  if (!o.read_only) {
    CFS_ASSIGN_OR_RETURN(FileLock lock, TakeWriterLock(ctx, d.id));
    writer.emplace(std::move(lock));
  }
  SecretBytes data_key;
  if (d.storage_encrypted) {
    CFS_ASSIGN_OR_RETURN(std::unique_ptr<keymgr::KeyManager> kms, ctx.open_kms(d.region));
    std::shared_ptr<keymgr::KeyManager> shared = std::move(kms);
    CFS_ASSIGN_OR_RETURN(data_key, UnwrapDataKey(shared.get(), d));
    o.key_check = args.snapshot ? KeyCheck(shared, d.kms_key_arn) : ClusterKeyCheck(shared, d, ClusterDir(ctx, d.id));
  }
  if (!o.read_only) o.on_live = LiveControlHook(&ctx, d.id);  // snapshots and stats (control.h)
  CFS_RETURN_IF_ERROR(MakeDirs(RunDir(ctx), 0700));
  DaemonPlan plan{&ctx, d.id, std::move(o), writer ? writer->fd() : -1, args.foreground};
  return RunMountDaemon(std::move(plan), std::move(data_key));
}

Status Umount(Context& ctx, const std::string& mountpoint) {
  char buf[PATH_MAX];
  std::string mp = ::realpath(mountpoint.c_str(), buf) != nullptr ? std::string(buf) : mountpoint;
  std::string type = MountedFsType(mp);
  if (type.empty()) return NotFound(fmt::format("{} is not mounted; see mounts with: findmnt -t fuse.cipherfs", mp));
  if (type != "fuse.cipherfs") {
    return FailedPrecondition(fmt::format("{} is a {} mount, not cipherfs; unmount it with umount", mp, type));
  }
  std::string record = FindRunRecord(ctx, mp);
  CFS_RETURN_IF_ERROR(ctx.fuse_unmount(mp));
  for (int i = 0; !record.empty() && RecordHeld(record); ++i) {
    if (i == 1200) {
      return Unavailable(fmt::format("{} is unmounted but its daemon has not exited after 60 s; check: cat {}",
                                     mp, record));
    }
    ::usleep(50 * 1000);
  }
  *ctx.out << fmt::format("unmounted {}\n", mp);
  return Status::Ok();
}

}  // namespace cfs::cli
