// The libfuse low-level operation table; see fuse_ops.h.
#include "fs/fuse_ops.h"

#include <cerrno>
#include <new>
#include <optional>

#include "common/log.h"
#include "fs/kill_priv.h"

namespace cfs::fs {
namespace {

enum class Kind { kRead, kModify };

Session& SessionOf(fuse_req_t req) { return *static_cast<Session*>(fuse_req_userdata(req)); }

Caller CallerOf(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  return Caller{ctx->uid, ctx->gid, ctx->pid};
}

// Runs one operation and sends exactly one reply for it.
template <typename Fn>
void Dispatch(fuse_req_t req, Kind kind, Fn&& fn) {
  VolumeFs& fs = *SessionOf(req).fs;
  Result<Reply> result = [&]() -> Result<Reply> {
    Status admitted = fs.Admit(kind == Kind::kModify);
    if (!admitted.ok()) return admitted;
    std::optional<OpGate::Pass> pass;
    if (kind == Kind::kModify) pass.emplace(fs.modify_gate());
    try {
      return fn(fs);
    } catch (const std::bad_alloc&) {
      return Status(Code::kUnavailable, "out of memory", ENOMEM);
    }
  }();
  SendReply(req, result);
}

// Operations that must run even after the keys are gone (they free state).
template <typename Fn>
void DispatchAlways(fuse_req_t req, Fn&& fn) {
  SendReply(req, fn(*SessionOf(req).fs));
}

void Init(void* userdata, fuse_conn_info* conn) {
  auto* session = static_cast<Session*>(userdata);
  auto want = [conn](unsigned cap) {
    if ((conn->capable & cap) != 0) conn->want |= cap;
  };
  want(FUSE_CAP_READDIRPLUS);
  want(FUSE_CAP_READDIRPLUS_AUTO);
  want(FUSE_CAP_ASYNC_READ);
  want(FUSE_CAP_ASYNC_DIO);
  want(FUSE_CAP_PARALLEL_DIROPS);
  want(FUSE_CAP_AUTO_INVAL_DATA);
  want(FUSE_CAP_CACHE_SYMLINKS);
  // No lock ops: the kernel's local fcntl/flock locks are right and free.
  conn->want &= ~unsigned(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
  // Splicing gives nothing to a filesystem that transforms every byte.
  conn->want &= ~unsigned(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
  // Writeback cache: buffered writes land in the kernel's page cache and
  // reach us as large page-aligned writes at writeback or fsync (small
  // writes and file creation ~5x faster; docs/performance.md). The kernel
  // then owns size and mtime of open files (it sends them back with
  // setattr) and handles O_APPEND; cipherfs is the only writer, so its
  // view is right. Errors of deferred writes come back from fsync (as
  // with ext4's delayed allocation). CIPHERFS_NO_WRITEBACK_CACHE=1 turns
  // it off (for measurements).
  if (session->writeback_cache) want(FUSE_CAP_WRITEBACK_CACHE);
  else conn->want &= ~unsigned(FUSE_CAP_WRITEBACK_CACHE);
  // FUSE_HANDLE_KILLPRIV_V2 (kill_priv.h): no security.capability round
  // trip before every write(2). CIPHERFS_NO_KILLPRIV_V2=1 turns it off.
  if (session->killpriv_v2 && session->fs->session() != nullptr) {
    auto kill = [](void* fs, uint64_t ino) { static_cast<VolumeFs*>(fs)->KillPriv(fuse_ino_t(ino)); };
    if (!InstallKillPrivV2(session->fs->session(), kill, session->fs, /*in_init=*/true)) {
      log::Warn("fs: libfuse refused the I/O hooks: the kernel keeps asking for security.capability");
    }
  }
  conn->max_write = 1u << 20;
  // The kernel lowers the bdi window to this when it processes the reply,
  // which may come after RunSession raised it (kernel_tuning.h): the same
  // 4 MiB, or sequential reads stay at a 1 MiB window.
  conn->max_readahead = 4u << 20;
  conn->max_background = session->max_background;
  conn->congestion_threshold = session->max_background * 3 / 4;
}

void Destroy(void* userdata) {
  auto* session = static_cast<Session*>(userdata);
  Status s = session->fs->Shutdown();
  if (!s.ok()) log::Error("fs: unclean shutdown: {}", s.ToString());
}

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Dispatch(req, Kind::kRead, [&](VolumeFs& fs) { return fs.Lookup(parent, name); });
}
void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t n) {
  DispatchAlways(req, [&](VolumeFs& fs) { return fs.Forget(ino, n); });
}
void ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  DispatchAlways(req, [&](VolumeFs& fs) -> Result<Reply> {
    for (size_t i = 0; i < count; ++i) static_cast<void>(fs.Forget(forgets[i].ino, forgets[i].nlookup));
    return Reply(ReplyNone{});
  });
}
void Getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  Dispatch(req, Kind::kRead, [&](VolumeFs& fs) { return fs.Getattr(ino); });
}
void Setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  Dispatch(req, Kind::kModify, [&](VolumeFs& fs) { return fs.Setattr(ino, *attr, to_set, fi); });
}
void Readlink(fuse_req_t req, fuse_ino_t ino) {
  Dispatch(req, Kind::kRead, [&](VolumeFs& fs) { return fs.Readlink(ino); });
}
void Mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  Dispatch(req, Kind::kModify, [&](VolumeFs& fs) { return fs.Mknod(CallerOf(req), parent, name, mode, rdev); });
}
void Mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  Dispatch(req, Kind::kModify, [&](VolumeFs& fs) { return fs.Mkdir(CallerOf(req), parent, name, mode); });
}
void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Dispatch(req, Kind::kModify, [&](VolumeFs& fs) { return fs.Unlink(parent, name); });
}
void Rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Dispatch(req, Kind::kModify, [&](VolumeFs& fs) { return fs.Rmdir(parent, name); });
}
void Symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
  Dispatch(req, Kind::kModify, [&](VolumeFs& fs) { return fs.Symlink(CallerOf(req), target, parent, name); });
}
void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent, const char* newname,
            unsigned flags) {
  Dispatch(req, Kind::kModify, [&](VolumeFs& fs) { return fs.Rename(parent, name, newparent, newname, flags); });
}
void Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  Dispatch(req, Kind::kModify, [&](VolumeFs& fs) { return fs.Link(ino, newparent, newname); });
}
void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Dispatch(req, Kind::kRead, [&](VolumeFs& fs) { return fs.Open(ino, fi); });
}
void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  Dispatch(req, Kind::kRead, [&](VolumeFs& fs) { return fs.Read(ino, size, off, fi); });
}
void Write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
  std::shared_ptr<store::FileData> sync_ahead;
  Dispatch(req, Kind::kModify, [&](VolumeFs& fs) { return fs.Write(ino, buf, size, off, fi, &sync_ahead); });
  // A database's log write is followed by its fdatasync: the reply is
  // out, so the device flush starts now instead of one or two round trips
  // later (the kernel's mtime setattr, the FSYNC itself).
  if (sync_ahead) sync_ahead->SyncAhead();
}
void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  DispatchAlways(req, [&](VolumeFs& fs) { return fs.Release(ino, fi); });
}
void Fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
  // A sync ahead already flushing this file's writes answers for us when it
  // ends: no wake-up of this thread in between.
  auto reply_later = [req](const Status& s) { SendReply(req, s.ok() ? Result<Reply>(Reply(ReplyOk{})) : s); };
  Dispatch(req, Kind::kRead, [&](VolumeFs& fs) { return fs.Fsync(ino, datasync, fi, reply_later); });
}
void Opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Dispatch(req, Kind::kRead, [&](VolumeFs& fs) { return fs.Opendir(ino, fi); });
}
void Readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  Dispatch(req, Kind::kRead, [&](VolumeFs& fs) { return fs.Readdir(req, ino, size, off, fi, false); });
}
void Readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  Dispatch(req, Kind::kRead, [&](VolumeFs& fs) { return fs.Readdir(req, ino, size, off, fi, true); });
}
void Releasedir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  DispatchAlways(req, [&](VolumeFs& fs) { return fs.Releasedir(ino, fi); });
}
void Fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
  Dispatch(req, Kind::kRead, [&](VolumeFs& fs) { return fs.Fsyncdir(ino, datasync, fi); });
}
void Statfs(fuse_req_t req, fuse_ino_t ino) {
  Dispatch(req, Kind::kRead, [&](VolumeFs& fs) { return fs.Statfs(ino); });
}
void Setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int flags) {
  Dispatch(req, Kind::kModify, [&](VolumeFs& fs) { return fs.Setxattr(ino, name, value, size, flags); });
}
void Getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  Dispatch(req, Kind::kRead, [&](VolumeFs& fs) { return fs.Getxattr(ino, name, size); });
}
void Listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Dispatch(req, Kind::kRead, [&](VolumeFs& fs) { return fs.Listxattr(ino, size); });
}
void Removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  Dispatch(req, Kind::kModify, [&](VolumeFs& fs) { return fs.Removexattr(ino, name); });
}
void Access(fuse_req_t req, fuse_ino_t ino, int mask) {
  Dispatch(req, Kind::kRead, [&](VolumeFs& fs) { return fs.Access(CallerOf(req), ino, mask); });
}
void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  Dispatch(req, Kind::kModify, [&](VolumeFs& fs) { return fs.Create(CallerOf(req), parent, name, mode, fi); });
}
void Fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, fuse_file_info* fi) {
  Dispatch(req, Kind::kModify, [&](VolumeFs& fs) { return fs.Fallocate(ino, mode, off, len, fi); });
}
void Lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, fuse_file_info* fi) {
  Dispatch(req, Kind::kRead, [&](VolumeFs& fs) { return fs.Lseek(ino, off, whence, fi); });
}

fuse_lowlevel_ops MakeOps() {
  fuse_lowlevel_ops ops{};
  ops.init = Init;
  ops.destroy = Destroy;
  ops.lookup = Lookup;
  ops.forget = Forget;
  ops.forget_multi = ForgetMulti;
  ops.getattr = Getattr;
  ops.setattr = Setattr;
  ops.readlink = Readlink;
  ops.mknod = Mknod;
  ops.mkdir = Mkdir;
  ops.unlink = Unlink;
  ops.rmdir = Rmdir;
  ops.symlink = Symlink;
  ops.rename = Rename;
  ops.link = Link;
  ops.open = Open;
  ops.read = Read;
  ops.write = Write;
  // No flush: libfuse answers the first FLUSH with ENOSYS and the kernel
  // sends no more, one round trip less per close(2) (untar, cp -r). close
  // still writes the dirty pages back and reports their errors; the mtime
  // kept in memory is persisted at release, and no lock ops are served.
  ops.release = Release;
  ops.fsync = Fsync;
  ops.opendir = Opendir;
  ops.readdir = Readdir;
  ops.readdirplus = Readdirplus;
  ops.releasedir = Releasedir;
  ops.fsyncdir = Fsyncdir;
  ops.statfs = Statfs;
  ops.setxattr = Setxattr;
  ops.getxattr = Getxattr;
  ops.listxattr = Listxattr;
  ops.removexattr = Removexattr;
  ops.access = Access;
  ops.create = Create;
  ops.fallocate = Fallocate;
  ops.lseek = Lseek;
  return ops;
}

}  // namespace

const fuse_lowlevel_ops& CipherfsOps() {
  static const fuse_lowlevel_ops ops = MakeOps();
  return ops;
}

}  // namespace cfs::fs
