// VolumeFs: construction, admission and the helpers shared by the
// operation files (volume_fs_*.cc).
#include "fs/volume_fs.h"

#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "common/log.h"

namespace cfs::fs {
namespace {
constexpr int kPathFlags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
}  // namespace

VolumeFs::VolumeFs(store::Backing* backing, store::DataStore* store, store::Tree* tree, store::VolumeKeys* keys,
                   int root_fd, const struct stat& root_st, VolumeFsConfig config)
    : backing_(backing),
      store_(store),
      tree_(tree),
      keys_(keys),
      config_(config),
      table_(backing),
      root_(std::make_shared<Inode>(backing, root_fd, root_st)),
      as_root_(geteuid() == 0) {
  root_->nlookup = 1;
}

VolumeFs::~VolumeFs() = default;

Status VolumeFs::Admit(bool modifies) {
  if (dead_.load(std::memory_order_acquire)) {
    std::call_once(dead_logged_, [] { log::Error("fs: volume keys are gone: every I/O fails with EIO"); });
    return Status(Code::kFailedPrecondition, "volume keys wiped", EIO);
  }
  if (modifies && config_.read_only) return Status(Code::kFailedPrecondition, "read-only mount", EROFS);
  return Status::Ok();
}

void VolumeFs::KillKeys() {
  if (dead_.exchange(true)) return;
  if (keys_ != nullptr) keys_->Wipe();
  tree_->codec().Wipe();
  log::Error("fs: key check failed: keys wiped, all I/O now fails with EIO");
  // Plaintext in the kernel's page cache must not outlive the keys.
  if (fuse_session* se = session_.load()) {
    fuse_lowlevel_notify_inval_inode(se, FUSE_ROOT_ID, 0, 0);
    for (const auto& inode : table_.Snapshot()) fuse_lowlevel_notify_inval_inode(se, NodeId(*inode), 0, 0);
  }
}

Status VolumeFs::Shutdown() {
  if (dead_.load()) return Status::Ok();
  if (config_.read_only) return Status::Ok();
  return store_->CloseClean();
}

Inode& VolumeFs::InodeOf(fuse_ino_t ino) {
  if (ino == FUSE_ROOT_ID) return *root_;
  return *reinterpret_cast<Inode*>(ino);
}

fuse_ino_t VolumeFs::NodeId(const Inode& inode) const {
  if (&inode == root_.get()) return FUSE_ROOT_ID;
  return reinterpret_cast<fuse_ino_t>(&inode);
}

std::shared_ptr<Inode> VolumeFs::Shared(Inode& inode) { return inode.shared_from_this(); }

Result<store::DirId> VolumeFs::DirIdOf(Inode& dir) {
  if (dir.type != S_IFDIR) return Status(Code::kFailedPrecondition, "not a directory", ENOTDIR);
  std::lock_guard<std::mutex> lock(dir.mu);
  if (!dir.dir_id) {
    auto id = tree_->ReadDirId(dir.fd);
    if (!id.ok()) {
      log::Error("fs: directory with host inode {} has no valid id: {}", dir.ino, id.status().ToString());
      return id.status();
    }
    dir.dir_id = *id;
  }
  return *dir.dir_id;
}

Result<std::string> VolumeFs::HostName(Inode& parent, const char* name) {
  CFS_ASSIGN_OR_RETURN(store::DirId id, DirIdOf(parent));
  return tree_->HostName(id, name);
}

Result<std::string> VolumeFs::PrepareName(Inode& parent, const char* name) {
  CFS_ASSIGN_OR_RETURN(store::DirId id, DirIdOf(parent));
  return tree_->PrepareName(parent.fd, id, name);
}

Result<ReplyEntry> VolumeFs::EntryOf(int parent_fd, const std::string& host,
                                     std::shared_ptr<store::FileData> new_data) {
  CFS_ASSIGN_OR_RETURN(int fd, backing_->OpenAt(parent_fd, host, kPathFlags));
  auto st = backing_->Fstat(fd);
  if (!st.ok()) {
    static_cast<void>(backing_->Close(fd));
    return st.status();
  }
  std::shared_ptr<Inode> inode = table_.Intern(fd, *st);
  if (new_data) {
    std::lock_guard<std::mutex> lock(inode->mu);
    if (!inode->data) inode->data = std::move(new_data);
  }
  auto attr = FixAttr(*inode, *st);
  if (!attr.ok()) {
    table_.Forget(inode.get(), 1);
    return attr.status();
  }
  ReplyEntry r{};
  r.e.ino = NodeId(*inode);
  r.e.attr = *attr;
  r.e.attr_timeout = config_.timeout;
  r.e.entry_timeout = config_.timeout;
  return r;
}

store::Owner VolumeFs::OwnerFor(const Caller& c, Inode& parent, mode_t* mode) {
  store::Owner owner;
  auto pst = backing_->Fstat(parent.fd);
  bool setgid_dir = pst.ok() && (pst->st_mode & S_ISGID) != 0;
  if (setgid_dir && S_ISDIR(*mode)) *mode |= S_ISGID;  // like ext4: subdirectories inherit it
  if (!as_root_) return owner;                         // a user's daemon creates as itself
  owner.set = true;
  owner.uid = c.uid;
  owner.gid = setgid_dir ? pst->st_gid : c.gid;
  return owner;
}

void VolumeFs::MarkUndurable(Inode& child, std::shared_ptr<Inode> parent, std::shared_ptr<Inode> parent2) {
  std::lock_guard<std::mutex> lock(child.mu);
  for (auto* p : {&parent, &parent2}) {
    if (*p == nullptr) continue;
    bool known = false;
    for (const auto& q : child.undurable_parents) known = known || q == *p;
    if (!known) child.undurable_parents.push_back(std::move(*p));
  }
}

Status VolumeFs::FsyncDirFd(int fd) {
  CFS_ASSIGN_OR_RETURN(int dfd, backing_->OpenAt(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  store::ScopedFd dir(backing_, dfd);
  return backing_->Fsync(dfd, false);
}

Status VolumeFs::SyncEntry(Inode& inode) {
  std::vector<std::shared_ptr<Inode>> parents;
  {
    std::lock_guard<std::mutex> lock(inode.mu);
    parents.swap(inode.undurable_parents);
  }
  for (size_t i = 0; i < parents.size(); ++i) {
    Status s = FsyncDirFd(parents[i]->fd);
    if (!s.ok() && s.sys_errno() == ENOENT) continue;  // the directory is gone: nothing to make durable
    if (!s.ok()) {
      std::lock_guard<std::mutex> lock(inode.mu);
      inode.undurable_parents.insert(inode.undurable_parents.end(), parents.begin() + i, parents.end());
      return s;
    }
  }
  return Status::Ok();
}

void VolumeFs::TouchMtime(Inode& inode) {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  inode.pending_mtime_ns.store(int64_t(now.tv_sec) * 1000000000 + now.tv_nsec, std::memory_order_relaxed);
}

Status VolumeFs::PersistMtime(Inode& inode) {
  int64_t ns = inode.pending_mtime_ns.exchange(0);
  if (ns == 0 || config_.read_only) return Status::Ok();
  struct timespec times[2];
  times[0].tv_sec = 0;
  times[0].tv_nsec = UTIME_OMIT;
  times[1].tv_sec = ns / 1000000000;
  times[1].tv_nsec = ns % 1000000000;
  Status s = backing_->Futimens(inode.fd, times);
  if (!s.ok()) {
    int64_t expected = 0;
    inode.pending_mtime_ns.compare_exchange_strong(expected, ns);
  }
  return s;
}

}  // namespace cfs::fs
