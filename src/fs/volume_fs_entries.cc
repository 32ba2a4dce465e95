// VolumeFs: lookup, forget and the operations that add or remove names.
#include <cerrno>
#include <cstdio>  // RENAME_*

#include "common/log.h"
#include "fs/volume_fs.h"

namespace cfs::fs {
namespace {

constexpr int kPathFlags = O_PATH | O_NOFOLLOW | O_CLOEXEC;

Status Err(int err, std::string what) { return Status(Code::kFailedPrecondition, std::move(what), err); }

}  // namespace

Result<Reply> VolumeFs::Lookup(fuse_ino_t parent, const char* name) {
  Inode& dir = InodeOf(parent);
  CFS_ASSIGN_OR_RETURN(std::string host, HostName(dir, name));
  auto entry = EntryOf(dir.fd, host);
  if (!entry.ok() && entry.status().sys_errno() == ENOENT) {
    ReplyEntry negative{};  // ino 0: the kernel caches the absence
    negative.e.entry_timeout = config_.timeout;
    return Reply(negative);
  }
  CFS_ASSIGN_OR_RETURN(ReplyEntry e, std::move(entry));
  return Reply(e);
}

Result<Reply> VolumeFs::Forget(fuse_ino_t ino, uint64_t n) {
  if (ino != FUSE_ROOT_ID) table_.Forget(&InodeOf(ino), n);
  return Reply(ReplyNone{});
}

Result<Reply> VolumeFs::Mkdir(const Caller& c, fuse_ino_t parent, const char* name, mode_t mode) {
  Inode& dir = InodeOf(parent);
  CFS_ASSIGN_OR_RETURN(store::DirId id, DirIdOf(dir));
  mode = (mode & 07777) | S_IFDIR;
  store::Owner owner = OwnerFor(c, dir, &mode);
  CFS_ASSIGN_OR_RETURN(std::string host, tree_->MakeDirectory(dir.fd, id, name, mode, owner));
  CFS_ASSIGN_OR_RETURN(ReplyEntry e, EntryOf(dir.fd, host));
  MarkUndurable(InodeOf(e.e.ino), Shared(dir));
  return Reply(e);
}

Result<Reply> VolumeFs::Mknod(const Caller& c, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  if (!S_ISFIFO(mode) && !S_ISSOCK(mode)) return Err(EPERM, "only fifos and sockets can be made");
  Inode& dir = InodeOf(parent);
  store::Owner owner = OwnerFor(c, dir, &mode);
  CFS_ASSIGN_OR_RETURN(std::string host, PrepareName(dir, name));
  CFS_RETURN_IF_ERROR(backing_->MknodAt(dir.fd, host, mode, rdev));
  if (owner.set) {
    Status s = backing_->FchownAt(dir.fd, host, owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW);
    if (!s.ok()) {
      static_cast<void>(backing_->UnlinkAt(dir.fd, host, 0));
      tree_->ReleaseName(dir.fd, host);
      return s;
    }
  }
  CFS_ASSIGN_OR_RETURN(ReplyEntry e, EntryOf(dir.fd, host));
  MarkUndurable(InodeOf(e.e.ino), Shared(dir));
  return Reply(e);
}

Result<Reply> VolumeFs::Symlink(const Caller& c, const char* target, fuse_ino_t parent, const char* name) {
  Inode& dir = InodeOf(parent);
  CFS_ASSIGN_OR_RETURN(store::DirId id, DirIdOf(dir));
  mode_t mode = S_IFLNK | 0777;
  store::Owner owner = OwnerFor(c, dir, &mode);
  CFS_ASSIGN_OR_RETURN(std::string host, tree_->MakeSymlink(dir.fd, id, name, target, owner));
  CFS_ASSIGN_OR_RETURN(ReplyEntry e, EntryOf(dir.fd, host));
  MarkUndurable(InodeOf(e.e.ino), Shared(dir));
  return Reply(e);
}

Result<Reply> VolumeFs::Link(fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  Inode& inode = InodeOf(ino);
  Inode& dir = InodeOf(newparent);
  CFS_ASSIGN_OR_RETURN(std::string host, PrepareName(dir, newname));
  std::string proc = "/proc/self/fd/" + std::to_string(inode.fd);
  Status s = backing_->LinkAt(AT_FDCWD, proc, dir.fd, host, AT_SYMLINK_FOLLOW);
  if (!s.ok()) {
    tree_->ReleaseName(dir.fd, host);
    return s;
  }
  CFS_ASSIGN_OR_RETURN(ReplyEntry e, EntryOf(dir.fd, host));
  MarkUndurable(inode, Shared(dir));
  return Reply(e);
}

Result<Reply> VolumeFs::Unlink(fuse_ino_t parent, const char* name) {
  Inode& dir = InodeOf(parent);
  CFS_ASSIGN_OR_RETURN(std::string host, HostName(dir, name));
  CFS_ASSIGN_OR_RETURN(int vfd, backing_->OpenAt(dir.fd, host, kPathFlags));
  store::ScopedFd victim(backing_, vfd);
  CFS_ASSIGN_OR_RETURN(struct stat st, backing_->Fstat(vfd));
  if (S_ISDIR(st.st_mode)) return Err(EISDIR, "unlink of a directory");
  CFS_RETURN_IF_ERROR(backing_->UnlinkAt(dir.fd, host, 0));
  tree_->ReleaseName(dir.fd, host);
  DeleteIfUnlinked(vfd);
  return Reply(ReplyOk{});
}

Result<Reply> VolumeFs::Rmdir(fuse_ino_t parent, const char* name) {
  Inode& dir = InodeOf(parent);
  CFS_ASSIGN_OR_RETURN(std::string host, HostName(dir, name));
  CFS_ASSIGN_OR_RETURN(struct stat st, backing_->FstatAt(dir.fd, host, AT_SYMLINK_NOFOLLOW));
  if (!S_ISDIR(st.st_mode)) return Err(ENOTDIR, "rmdir of a non-directory");
  CFS_RETURN_IF_ERROR(tree_->RemoveDirectory(dir.fd, host));
  tree_->ReleaseName(dir.fd, host);
  return Reply(ReplyOk{});
}

Result<Reply> VolumeFs::Rename(fuse_ino_t parent, const char* name, fuse_ino_t newparent, const char* newname,
                               unsigned flags) {
  if ((flags & ~unsigned(RENAME_NOREPLACE | RENAME_EXCHANGE)) != 0) return Err(EINVAL, "unsupported rename flag");
  Inode& from = InodeOf(parent);
  Inode& to = InodeOf(newparent);
  CFS_ASSIGN_OR_RETURN(std::string old_host, HostName(from, name));
  CFS_ASSIGN_OR_RETURN(struct stat src, backing_->FstatAt(from.fd, old_host, AT_SYMLINK_NOFOLLOW));
  CFS_ASSIGN_OR_RETURN(std::string new_host, PrepareName(to, newname));
  // The object the rename replaces, if any (its data may have to go).
  store::ScopedFd victim;
  std::string stash;
  if ((flags & RENAME_EXCHANGE) == 0) {
    auto vfd = backing_->OpenAt(to.fd, new_host, kPathFlags);
    if (vfd.ok()) {
      victim = store::ScopedFd(backing_, *vfd);
      auto vst = backing_->Fstat(*vfd);
      bool dir_over_dir = vst.ok() && S_ISDIR(vst->st_mode) && S_ISDIR(src.st_mode);
      if (dir_over_dir && (flags & RENAME_NOREPLACE) == 0 && !(&from == &to && old_host == new_host)) {
        CFS_ASSIGN_OR_RETURN(stash, tree_->StashEmptyDirectory(to.fd, new_host));
      }
    }
  }
  Status s = backing_->RenameAt(from.fd, old_host, to.fd, new_host, flags);
  if (!s.ok()) {
    if (!stash.empty()) static_cast<void>(tree_->UnstashDirectory(to.fd, stash, new_host));
    if (!backing_->FstatAt(to.fd, new_host, AT_SYMLINK_NOFOLLOW).ok()) tree_->ReleaseName(to.fd, new_host);
    return s;
  }
  if (!stash.empty()) {
    Status d = tree_->DestroyStashed(to.fd, stash);
    if (!d.ok()) log::Warn("fs: could not remove a replaced directory: {}", d.ToString());
  }
  if ((flags & RENAME_EXCHANGE) == 0) tree_->ReleaseName(from.fd, old_host);
  if (victim.get() >= 0) DeleteIfUnlinked(victim.get());
  // The moved entries are not durable until their directories are fsynced.
  for (const std::string* h : {&new_host, &old_host}) {
    if (h == &old_host && (flags & RENAME_EXCHANGE) == 0) continue;
    auto st = backing_->FstatAt(h == &new_host ? to.fd : from.fd, *h, AT_SYMLINK_NOFOLLOW);
    if (!st.ok()) continue;
    if (auto moved = table_.Find(st->st_dev, st->st_ino)) MarkUndurable(*moved, Shared(from), Shared(to));
  }
  return Reply(ReplyOk{});
}

Result<Reply> VolumeFs::Readlink(fuse_ino_t ino) {
  Inode& inode = InodeOf(ino);
  if (inode.type != S_IFLNK) return Err(EINVAL, "not a symlink");
  CFS_ASSIGN_OR_RETURN(std::string target, tree_->ReadSymlink(inode.fd));
  return Reply(ReplyReadlink{std::move(target)});
}

void VolumeFs::DeleteIfUnlinked(int victim) {
  auto st = backing_->Fstat(victim);
  if (!st.ok() || !S_ISREG(st->st_mode) || st->st_nlink > 0) return;
  if (std::shared_ptr<Inode> inode = table_.Find(st->st_dev, st->st_ino)) {
    std::lock_guard<std::mutex> lock(inode->mu);
    inode->deleted = true;
    if (inode->opens > 0) return;  // the last release deletes the data
  }
  Status s = DeleteDataOf(victim);
  if (!s.ok()) log::Warn("fs: could not delete the data of an unlinked file: {}", s.ToString());
}

Status VolumeFs::DeleteDataOf(int opath_fd) {
  store::FileId id;
  {
    CFS_ASSIGN_OR_RETURN(std::shared_ptr<store::FileData> data, store_->OpenFile(opath_fd));  // reopens it
    id = data->id();
  }
  return store_->DeleteFileData(id);
}

}  // namespace cfs::fs
