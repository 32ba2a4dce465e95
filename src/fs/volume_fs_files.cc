// VolumeFs: regular files (create, open, read, write, sync, release...).
// Contents go through FileData (one per host inode, shared by all opens and
// hard links; it locks block ranges, so concurrent I/O needs no lock here).
#include <cerrno>
#include <vector>

#include "common/log.h"
#include "fs/volume_fs.h"

namespace cfs::fs {
namespace {

Status Err(int err, std::string what) { return Status(Code::kFailedPrecondition, std::move(what), err); }

FileHandle& HandleOf(fuse_file_info* fi) { return *reinterpret_cast<FileHandle*>(fi->fh); }

// Per-open flags for the kernel: keep the page cache across opens
// (cipherfs is the only writer); O_DIRECT opens bypass it for real.
// With the writeback cache (fuse_ops.cc Init) buffered writes reach Write
// from the kernel's writeback; backing write errors then surface at fsync
// (FileData keeps the first one for the next Sync). O_DIRECT then goes
// through the kernel's generic direct I/O (coherent with dirty pages: it
// writes the range back first); FOPEN_DIRECT_IO would read stale sizes.
void SetOpenFlags(fuse_file_info* fi, bool writeback_cache) {
  fi->keep_cache = 1;
  if ((fi->flags & O_DIRECT) != 0 && !writeback_cache) {
    fi->direct_io = 1;
    fi->keep_cache = 0;
    // libfuse 3.14.0 cannot send FOPEN_PARALLEL_DIRECT_WRITES (3.15+); the
    // kernel then serializes direct writes per inode.
  }
}

}  // namespace

Result<std::shared_ptr<store::FileData>> VolumeFs::AcquireData(Inode& inode) {
  if (inode.type != S_IFREG) return Err(EINVAL, "not a regular file");
  std::lock_guard<std::mutex> lock(inode.mu);
  if (inode.deleted && inode.opens == 0) return Err(ENOENT, "file was deleted");
  if (!inode.data) {
    CFS_ASSIGN_OR_RETURN(inode.data, store_->OpenFile(inode.fd));  // reopens it privately
  }
  ++inode.opens;
  return inode.data;
}

void VolumeFs::ReleaseData(Inode& inode) {
  std::shared_ptr<store::FileData> last;
  bool delete_now = false;
  {
    std::lock_guard<std::mutex> lock(inode.mu);
    if (--inode.opens > 0) return;
    last = std::move(inode.data);
    if (last) {
      inode.known_size = last->size();
      inode.known_allocated = last->AllocatedBytes();
    }
    delete_now = inode.deleted;
  }
  if (delete_now && last) {
    store::FileId id = last->id();
    last.reset();
    Status s = store_->DeleteFileData(id);
    if (!s.ok()) log::Warn("fs: could not delete the data of an unlinked file: {}", s.ToString());
  }
}

Result<Reply> VolumeFs::Create(const Caller& c, fuse_ino_t parent, const char* name, mode_t mode,
                               fuse_file_info* fi) {
  Inode& dir = InodeOf(parent);
  mode = (mode & 07777) | S_IFREG;
  store::Owner owner = OwnerFor(c, dir, &mode);
  CFS_ASSIGN_OR_RETURN(std::string host, PrepareName(dir, name));
  CFS_ASSIGN_OR_RETURN(int fd, backing_->OpenAt(dir.fd, host, O_CREAT | O_EXCL | O_RDWR | O_NOFOLLOW | O_CLOEXEC,
                                                0600));
  // The new file's contents keep the creator's descriptor (CreateFile
  // takes it over, even on failure).
  auto created = store_->CreateFile(fd);
  Status made = created.status();
  if (made.ok() && owner.set) made = backing_->Fchown(fd, owner.uid, owner.gid);
  if (made.ok()) made = backing_->Fchmod(fd, mode & 07777);
  if (!made.ok()) {
    static_cast<void>(backing_->UnlinkAt(dir.fd, host, 0));
    tree_->ReleaseName(dir.fd, host);
    return made;
  }
  CFS_ASSIGN_OR_RETURN(ReplyEntry e, EntryOf(dir.fd, host, *created));
  Inode& inode = InodeOf(e.e.ino);
  MarkUndurable(inode, Shared(dir));
  auto data = AcquireData(inode);
  if (!data.ok()) {
    table_.Forget(&inode, 1);
    return data.status();
  }
  SetOpenFlags(fi, config_.writeback_cache);
  if (config_.read_only) fi->keep_cache = 0;  // a writer may run beside (replicas): no stale pages
  fi->fh = reinterpret_cast<uint64_t>(new FileHandle{Shared(inode), std::move(*data), fi->flags});
  return Reply(ReplyCreate{e.e, *fi});
}

Result<Reply> VolumeFs::Open(fuse_ino_t ino, fuse_file_info* fi) {
  Inode& inode = InodeOf(ino);
  if (config_.read_only && (fi->flags & O_ACCMODE) != O_RDONLY) return Err(EROFS, "read-only mount");
  CFS_ASSIGN_OR_RETURN(auto data, AcquireData(inode));
  if ((fi->flags & O_TRUNC) != 0) {  // atomic_o_trunc; Linux truncates even O_RDONLY opens
    Status s = data->Truncate(0);
    if (!s.ok()) {
      data.reset();
      ReleaseData(inode);
      return s;
    }
    TouchMtime(inode);
  }
  SetOpenFlags(fi, config_.writeback_cache);
  if (config_.read_only) fi->keep_cache = 0;  // a writer may run beside (replicas): no stale pages
  fi->fh = reinterpret_cast<uint64_t>(new FileHandle{Shared(inode), std::move(data), fi->flags});
  return Reply(ReplyOpen{*fi});
}

Result<Reply> VolumeFs::Read(fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  thread_local std::vector<uint8_t> buf;
  if (buf.size() < size) buf.resize(size);
  CFS_ASSIGN_OR_RETURN(size_t n, HandleOf(fi).data->Read(uint64_t(off), size, buf.data()));
  return Reply(ReplyBuf{buf.data(), n});
}

Result<Reply> VolumeFs::Write(fuse_ino_t, const char* buf, size_t size, off_t off, fuse_file_info* fi,
                              std::shared_ptr<store::FileData>* sync_ahead) {
  FileHandle& h = HandleOf(fi);
  ByteView data(reinterpret_cast<const uint8_t*>(buf), size);
  CFS_ASSIGN_OR_RETURN(size_t n, h.data->Write(uint64_t(off), data));
  TouchMtime(*h.inode);
  if ((h.flags & O_DSYNC) != 0) {  // O_SYNC includes the O_DSYNC bit
    CFS_RETURN_IF_ERROR(h.data->Sync((h.flags & O_SYNC) != O_SYNC));
  } else if (sync_ahead != nullptr && h.data->WantsSyncAhead()) {
    *sync_ahead = h.data;  // a reference: the kernel may release the handle once we reply
  }
  return Reply(ReplyWrite{n});
}

Result<Reply> VolumeFs::Release(fuse_ino_t, fuse_file_info* fi) {
  std::unique_ptr<FileHandle> h(reinterpret_cast<FileHandle*>(fi->fh));
  Status s = PersistMtime(*h->inode);
  if (!s.ok()) log::Warn("fs: could not set the mtime of a file at close: {}", s.ToString());
  h->data.reset();
  ReleaseData(*h->inode);
  return Reply(ReplyOk{});
}

Result<Reply> VolumeFs::Fsync(fuse_ino_t, int datasync, fuse_file_info* fi,
                              const std::function<void(const Status&)>& reply_later) {
  FileHandle& h = HandleOf(fi);
  if (datasync != 0 && reply_later) {
    bool entry_durable;
    {
      std::lock_guard<std::mutex> lock(h.inode->mu);
      entry_durable = h.inode->undurable_parents.empty();
    }
    if (entry_durable && h.data->JoinSyncAhead(reply_later)) return Reply(ReplyLater{});
  }
  // fdatasync need not make the mtime durable (release writes it):
  // one syscall less per commit of a database.
  if (datasync == 0) CFS_RETURN_IF_ERROR(PersistMtime(*h.inode));
  CFS_RETURN_IF_ERROR(h.data->Sync(datasync != 0));
  CFS_RETURN_IF_ERROR(SyncEntry(*h.inode));
  return Reply(ReplyOk{});
}

Result<Reply> VolumeFs::Fallocate(fuse_ino_t, int mode, off_t off, off_t len, fuse_file_info* fi) {
  if (off < 0 || len <= 0) return Err(EINVAL, "bad fallocate range");
  FileHandle& h = HandleOf(fi);
  CFS_RETURN_IF_ERROR(h.data->Fallocate(mode, uint64_t(off), uint64_t(len)));
  TouchMtime(*h.inode);
  return Reply(ReplyOk{});
}

Result<Reply> VolumeFs::Lseek(fuse_ino_t, off_t off, int whence, fuse_file_info* fi) {
  if (whence != SEEK_DATA && whence != SEEK_HOLE) return Err(EINVAL, "lseek whence");
  if (off < 0) return Err(ENXIO, "negative offset");
  CFS_ASSIGN_OR_RETURN(uint64_t pos, HandleOf(fi).data->Seek(uint64_t(off), whence));
  return Reply(ReplyLseek{off_t(pos)});
}

}  // namespace cfs::fs
