// VolumeFs: attributes, access, statfs and extended attributes.
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>

#include "common/log.h"
#include "fs/volume_fs.h"

namespace cfs::fs {
namespace {

constexpr std::string_view kCapsXattr = "security.capability";
constexpr int64_t kMaxPendingSec = 9000000000;  // x 1e9 still fits in int64_t

Status Err(int err, std::string what) { return Status(Code::kFailedPrecondition, std::move(what), err); }

struct timespec TimeOf(int to_set, int set_flag, int now_flag, const struct timespec& given) {
  struct timespec t{};
  if ((to_set & now_flag) != 0) {
    t.tv_nsec = UTIME_NOW;
  } else if ((to_set & set_flag) != 0) {
    t = given;
  } else {
    t.tv_nsec = UTIME_OMIT;
  }
  return t;
}

}  // namespace

Result<struct stat> VolumeFs::AttrOf(Inode& inode) {
  CFS_ASSIGN_OR_RETURN(struct stat st, backing_->Fstat(inode.fd));
  return FixAttr(inode, st);
}

// The host stat of an object, turned into what users see: plaintext sizes
// of regular files and symlinks, the in-memory mtime of a written file.
Result<struct stat> VolumeFs::FixAttr(Inode& inode, struct stat st) {
  if (S_ISLNK(st.st_mode)) st.st_size = off_t(tree_->codec().SymlinkSize(uint64_t(st.st_size)));
  if (!S_ISREG(st.st_mode)) return st;
  std::optional<uint64_t> size, allocated;
  {
    std::lock_guard<std::mutex> lock(inode.mu);
    if (inode.data) {
      size = inode.data->size();
      allocated = inode.data->AllocatedBytes();
    } else {
      size = inode.known_size;
      allocated = inode.known_allocated;
    }
  }
  if (config_.read_only) size.reset();  // a writer may run beside (replicas): the inode file says
  if (!size) {
    CFS_ASSIGN_OR_RETURN(uint64_t n, store_->ReadSize(inode.fd));  // reopens it privately
    size = n;
    std::lock_guard<std::mutex> lock(inode.mu);
    if (!inode.data) inode.known_size = n;
  }
  st.st_size = off_t(*size);
  // Not open: assume the file is not sparse (exact once it has been open).
  uint64_t bytes = allocated ? *allocated : (*size + 4095) / 4096 * 4096;
  st.st_blocks = blkcnt_t(bytes / 512);
  st.st_blksize = 4096;
  if (int64_t ns = inode.pending_mtime_ns.load(std::memory_order_relaxed); ns != 0) {
    st.st_mtim.tv_sec = ns / 1000000000;
    st.st_mtim.tv_nsec = ns % 1000000000;
    st.st_ctim = st.st_mtim;
  }
  return st;
}

Result<Reply> VolumeFs::Getattr(fuse_ino_t ino) {
  CFS_ASSIGN_OR_RETURN(struct stat st, AttrOf(InodeOf(ino)));
  return Reply(ReplyAttr{st, config_.timeout});
}

// With the writeback cache the kernel owns the mtime of an open file and
// sends it back (mtime and ctime, with the handle) before every fsync and
// fdatasync. Kept in memory like a write's mtime and set on the host inode
// file at fsync and release (PersistMtime): one host utimensat less
// per database commit. Only for a handle the kernel names, so a release
// always follows.
bool VolumeFs::KeepMtimeInMemory(const Inode& inode, int to_set, const fuse_file_info* fi) const {
  constexpr int kTimesOnly = FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_CTIME;
  return inode.type == S_IFREG && !config_.read_only && fi != nullptr && fi->fh != 0 &&
         (to_set & FUSE_SET_ATTR_MTIME) != 0 && (to_set & ~kTimesOnly) == 0;
}

Result<Reply> VolumeFs::Setattr(fuse_ino_t ino, const struct stat& attr, int to_set, fuse_file_info* fi) {
  Inode& inode = InodeOf(ino);
  // (0 means "none pending"; times at or before the epoch, or past what
  // int64 nanoseconds hold, go to the host.)
  const int64_t sec = attr.st_mtim.tv_sec;
  if (sec > 0 && sec < kMaxPendingSec && KeepMtimeInMemory(inode, to_set, fi)) {
    inode.pending_mtime_ns.store(sec * 1000000000 + attr.st_mtim.tv_nsec);
    return Getattr(ino);
  }
  if ((to_set & FUSE_SET_ATTR_MODE) != 0) CFS_RETURN_IF_ERROR(backing_->Fchmod(inode.fd, attr.st_mode & 07777));
  if ((to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) != 0) {
    uid_t uid = (to_set & FUSE_SET_ATTR_UID) != 0 ? attr.st_uid : uid_t(-1);
    gid_t gid = (to_set & FUSE_SET_ATTR_GID) != 0 ? attr.st_gid : gid_t(-1);
    CFS_RETURN_IF_ERROR(backing_->Fchown(inode.fd, uid, gid));
  }
  if ((to_set & FUSE_SET_ATTR_SIZE) != 0) {
    if (inode.type == S_IFDIR) return Err(EISDIR, "truncate of a directory");
    if (inode.type != S_IFREG) return Err(EINVAL, "truncate of a special file");
    if (fi != nullptr && fi->fh != 0) {
      CFS_RETURN_IF_ERROR(reinterpret_cast<FileHandle*>(fi->fh)->data->Truncate(uint64_t(attr.st_size)));
    } else {
      CFS_ASSIGN_OR_RETURN(auto data, AcquireData(inode));
      Status s = data->Truncate(uint64_t(attr.st_size));
      data.reset();
      ReleaseData(inode);
      CFS_RETURN_IF_ERROR(s);
    }
    TouchMtime(inode);
  }
  if ((to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)) !=
      0) {
    struct timespec times[2] = {
        TimeOf(to_set, FUSE_SET_ATTR_ATIME, FUSE_SET_ATTR_ATIME_NOW, attr.st_atim),
        TimeOf(to_set, FUSE_SET_ATTR_MTIME, FUSE_SET_ATTR_MTIME_NOW, attr.st_mtim),
    };
    if (times[1].tv_nsec != UTIME_OMIT) inode.pending_mtime_ns.store(0);
    CFS_RETURN_IF_ERROR(backing_->Futimens(inode.fd, times));
  } else if ((to_set & FUSE_SET_ATTR_SIZE) != 0) {
    CFS_RETURN_IF_ERROR(PersistMtime(inode));
  }
  return Getattr(ino);
}

void VolumeFs::KillPriv(fuse_ino_t ino) {
  if (dead_.load() || config_.read_only) return;
  Inode& inode = InodeOf(ino);
  if (inode.type != S_IFREG) return;
  bool changed = false;
  Result<struct stat> st = backing_->Fstat(inode.fd);
  mode_t kill = S_ISUID | S_ISGID;
  if (st.ok() && (st->st_mode & S_IXGRP) == 0) kill = S_ISUID;  // sgid without x: mandatory locking, kept
  if (st.ok() && (st->st_mode & kill) != 0) {
    Status s = backing_->Fchmod(inode.fd, st->st_mode & 07777 & ~kill);
    if (!s.ok()) log::Warn("fs: could not drop set-id bits after a write: {}", s.ToString());
    changed = true;
  }
  if (inode.has_caps.load() != 0) {
    Status s = tree_->RemoveXattr(inode.fd, kCapsXattr);
    if (s.ok() || s.sys_errno() == ENODATA) inode.has_caps.store(0);
    else log::Warn("fs: could not drop file capabilities after a write: {}", s.ToString());
    changed = changed || s.ok();
  }
  fuse_session* se = session_.load();
  if (changed && se != nullptr) fuse_lowlevel_notify_inval_inode(se, ino, -1, 0);
}

Result<Reply> VolumeFs::Access(const Caller& c, fuse_ino_t ino, int mask) {
  CFS_ASSIGN_OR_RETURN(struct stat st, backing_->Fstat(InodeOf(ino).fd));
  if (mask == F_OK) return Reply(ReplyOk{});
  if ((mask & W_OK) != 0 && config_.read_only) return Err(EROFS, "read-only mount");
  mode_t bits;
  if (c.uid == 0) {
    bits = (S_ISDIR(st.st_mode) || (st.st_mode & 0111) != 0) ? 7 : 6;
  } else if (c.uid == st.st_uid) {
    bits = (st.st_mode >> 6) & 7;
  } else if (c.gid == st.st_gid) {
    bits = (st.st_mode >> 3) & 7;
  } else {
    bits = st.st_mode & 7;
  }
  if ((mask & ~int(bits) & (R_OK | W_OK | X_OK)) != 0) return Err(EACCES, "access denied");
  return Reply(ReplyOk{});
}

Result<Reply> VolumeFs::Statfs(fuse_ino_t ino) {
  CFS_ASSIGN_OR_RETURN(struct statvfs st, backing_->Fstatvfs(InodeOf(ino).fd));
  st.f_namemax = store::kMaxName;
  return Reply(ReplyStatfs{st});
}

Result<Reply> VolumeFs::Setxattr(fuse_ino_t ino, const char* name, const char* value, size_t size, int flags) {
  Inode& inode = InodeOf(ino);
  ByteView v(reinterpret_cast<const uint8_t*>(value), size);
  if (std::string_view(name) == kCapsXattr) inode.has_caps.store(-1);
  CFS_RETURN_IF_ERROR(tree_->SetXattr(inode.fd, name, v, flags));
  return Reply(ReplyOk{});
}

Result<Reply> VolumeFs::Getxattr(fuse_ino_t ino, const char* name, size_t size) {
  Inode& inode = InodeOf(ino);
  bool caps = std::string_view(name) == kCapsXattr;
  if (caps && inode.has_caps.load() == 0) return Err(ENODATA, "no capabilities");
  std::string buf(size, '\0');
  auto n = tree_->GetXattr(inode.fd, name, size == 0 ? nullptr : buf.data(), size);
  if (caps) {
    if (n.ok()) inode.has_caps.store(1);
    else if (n.status().sys_errno() == ENODATA) inode.has_caps.store(0);
  }
  if (!n.ok()) return n.status();
  if (size == 0) return Reply(ReplyXattrSize{*n});
  buf.resize(*n);
  return Reply(ReplyBytes{std::move(buf)});
}

Result<Reply> VolumeFs::Listxattr(fuse_ino_t ino, size_t size) {
  CFS_ASSIGN_OR_RETURN(std::string list, tree_->ListXattr(InodeOf(ino).fd));
  if (size == 0) return Reply(ReplyXattrSize{list.size()});
  if (size < list.size()) return Err(ERANGE, "xattr list buffer too small");
  return Reply(ReplyBytes{std::move(list)});
}

Result<Reply> VolumeFs::Removexattr(fuse_ino_t ino, const char* name) {
  if (std::string_view(name) == kCapsXattr) InodeOf(ino).has_caps.store(-1);
  CFS_RETURN_IF_ERROR(tree_->RemoveXattr(InodeOf(ino).fd, name));
  return Reply(ReplyOk{});
}

}  // namespace cfs::fs
