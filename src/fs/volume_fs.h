// VolumeFs: the filesystem operations of one mounted volume, one method per
// FUSE operation, each returning Result<Reply> (fuse_ops.cc dispatches and
// replies). Names and symlinks go through store::Tree, file contents through
// store::DataStore / FileData; every host syscall through store::Backing.
// Thread safety: all methods may be called concurrently from libfuse's
// worker threads; see inode_table.h for the lock order.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "common/result.h"
#include "fs/fuse_include.h"
#include "fs/inode_table.h"
#include "fs/op_gate.h"
#include "fs/reply.h"
#include "store/backing.h"
#include "store/data_store.h"
#include "store/tree.h"
#include "store/tree_fd.h"
#include "store/volume_keys.h"

namespace cfs::fs {

// The caller of one request.
struct Caller {
  uid_t uid = 0;
  gid_t gid = 0;
  pid_t pid = 0;
};

struct VolumeFsConfig {
  bool read_only = false;
  double timeout = 86400.0;  // entry and attr timeout: cipherfs is the only writer
  // The kernel's writeback cache is on (fuse_ops.cc Init): O_DIRECT opens
  // then take the kernel's generic direct I/O path, which writes back and
  // invalidates cached pages of the range first (FOPEN_DIRECT_IO would not).
  bool writeback_cache = false;
};

// What an open regular file keeps (fuse_file_info::fh).
struct FileHandle {
  std::shared_ptr<Inode> inode;
  std::shared_ptr<store::FileData> data;
  int flags = 0;
};

class VolumeFs {
 public:
  // `root_fd`: an O_PATH fd of tree/ (owned). `keys` may be null (unencrypted).
  VolumeFs(store::Backing* backing, store::DataStore* store, store::Tree* tree, store::VolumeKeys* keys,
           int root_fd, const struct stat& root_st, VolumeFsConfig config);
  ~VolumeFs();

  // Whether an operation may run now: EIO once the keys are gone, EROFS for
  // a modifying operation on a read-only mount.
  Status Admit(bool modifies);
  // Key became unusable: wipes the keys, drops the kernel's cached pages
  // and attributes; every later operation fails (EIO).
  void KillKeys();
  // The session, for cache invalidation notices (set once mounted).
  void set_session(fuse_session* se) { session_.store(se); }
  fuse_session* session() const { return session_.load(); }
  bool read_only() const { return config_.read_only; }
  bool writeback_cache() const { return config_.writeback_cache; }
  // Modifying operations pass this gate; a snapshot pauses it (mount.h LiveMount).
  OpGate& modify_gate() { return modify_gate_; }
  // Clean unmount: pending mtimes written, data store closed cleanly.
  Status Shutdown();

  // Entries (volume_fs_entries.cc).
  Result<Reply> Lookup(fuse_ino_t parent, const char* name);
  Result<Reply> Forget(fuse_ino_t ino, uint64_t n);
  Result<Reply> Mkdir(const Caller& c, fuse_ino_t parent, const char* name, mode_t mode);
  Result<Reply> Mknod(const Caller& c, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev);
  Result<Reply> Symlink(const Caller& c, const char* target, fuse_ino_t parent, const char* name);
  Result<Reply> Link(fuse_ino_t ino, fuse_ino_t newparent, const char* newname);
  Result<Reply> Unlink(fuse_ino_t parent, const char* name);
  Result<Reply> Rmdir(fuse_ino_t parent, const char* name);
  Result<Reply> Rename(fuse_ino_t parent, const char* name, fuse_ino_t newparent, const char* newname,
                       unsigned flags);
  Result<Reply> Readlink(fuse_ino_t ino);

  // Attributes (volume_fs_attrs.cc).
  Result<Reply> Getattr(fuse_ino_t ino);
  Result<Reply> Setattr(fuse_ino_t ino, const struct stat& attr, int to_set, fuse_file_info* fi);
  Result<Reply> Access(const Caller& c, fuse_ino_t ino, int mask);
  Result<Reply> Statfs(fuse_ino_t ino);
  Result<Reply> Setxattr(fuse_ino_t ino, const char* name, const char* value, size_t size, int flags);
  Result<Reply> Getxattr(fuse_ino_t ino, const char* name, size_t size);
  Result<Reply> Listxattr(fuse_ino_t ino, size_t size);
  Result<Reply> Removexattr(fuse_ino_t ino, const char* name);
  // FUSE_HANDLE_KILLPRIV_V2 (kill_priv.h): a write, truncate or truncating
  // open by a caller without CAP_FSETID drops suid, sgid (if group-
  // executable) and security.capability; the kernel's cached attributes
  // of the node are invalidated. Errors are logged (the request goes on).
  void KillPriv(fuse_ino_t ino);

  // Files (volume_fs_files.cc).
  Result<Reply> Create(const Caller& c, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi);
  Result<Reply> Open(fuse_ino_t ino, fuse_file_info* fi);
  Result<Reply> Read(fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
  // `*sync_ahead` (if given) is set to the file when its fsync is expected
  // next (FileData::WantsSyncAhead): the caller runs SyncAhead after the reply.
  Result<Reply> Write(fuse_ino_t ino, const char* buf, size_t size, off_t off, fuse_file_info* fi,
                      std::shared_ptr<store::FileData>* sync_ahead = nullptr);
  Result<Reply> Release(fuse_ino_t ino, fuse_file_info* fi);
  // With `reply_later`, a datasync that a sync ahead in flight covers
  // returns ReplyLater: `reply_later` is then called once, with the result,
  // when that sync ends (FileData::JoinSyncAhead).
  Result<Reply> Fsync(fuse_ino_t ino, int datasync, fuse_file_info* fi,
                      const std::function<void(const Status&)>& reply_later = {});
  Result<Reply> Fallocate(fuse_ino_t ino, int mode, off_t off, off_t len, fuse_file_info* fi);
  Result<Reply> Lseek(fuse_ino_t ino, off_t off, int whence, fuse_file_info* fi);

  // Directories (volume_fs_dirs.cc).
  Result<Reply> Opendir(fuse_ino_t ino, fuse_file_info* fi);
  Result<Reply> Readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi, bool plus);
  Result<Reply> Releasedir(fuse_ino_t ino, fuse_file_info* fi);
  Result<Reply> Fsyncdir(fuse_ino_t ino, int datasync, fuse_file_info* fi);

 private:
  Inode& InodeOf(fuse_ino_t ino);
  fuse_ino_t NodeId(const Inode& inode) const;
  Result<store::DirId> DirIdOf(Inode& dir);
  // Looks up the host entry `host` of `parent_fd`, counting one kernel lookup.
  // `new_data`: the contents of a file just created under `host`, given to
  // its new inode before its attributes are read (no read of its size).
  Result<ReplyEntry> EntryOf(int parent_fd, const std::string& host,
                             std::shared_ptr<store::FileData> new_data = nullptr);
  Result<struct stat> AttrOf(Inode& inode);
  Result<struct stat> FixAttr(Inode& inode, struct stat st);
  store::Owner OwnerFor(const Caller& c, Inode& parent, mode_t* mode);
  void MarkUndurable(Inode& child, std::shared_ptr<Inode> parent, std::shared_ptr<Inode> parent2 = nullptr);
  std::shared_ptr<Inode> Shared(Inode& inode);
  // Durability of the entries of `inode` (create/link/rename).
  Status SyncEntry(Inode& inode);
  Status FsyncDirFd(int fd);
  // Writes a pending mtime to the host inode file.
  Status PersistMtime(Inode& inode);
  void TouchMtime(Inode& inode);
  // A setattr of only mtime/ctime on an open file, answered from memory.
  bool KeepMtimeInMemory(const Inode& inode, int to_set, const fuse_file_info* fi) const;
  // Shared FileData of a regular file (opens it if needed), counted as one open.
  Result<std::shared_ptr<store::FileData>> AcquireData(Inode& inode);
  void ReleaseData(Inode& inode);
  // After unlink/rename-over: deletes the data if the last link is gone
  // and nothing has it open. `victim` is an O_PATH fd of the object.
  void DeleteIfUnlinked(int victim);
  Status DeleteDataOf(int opath_fd);
  // Host name of `name` in directory `parent`.
  Result<std::string> HostName(Inode& parent, const char* name);
  Result<std::string> PrepareName(Inode& parent, const char* name);

  store::Backing* backing_;
  store::DataStore* store_;
  store::Tree* tree_;
  store::VolumeKeys* keys_;
  VolumeFsConfig config_;
  InodeTable table_;
  std::shared_ptr<Inode> root_;
  std::atomic<bool> dead_{false};
  std::atomic<fuse_session*> session_{nullptr};
  std::once_flag dead_logged_;
  const bool as_root_;
  OpGate modify_gate_;
};

}  // namespace cfs::fs
