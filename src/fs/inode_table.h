// Inode and InodeTable: the FUSE adapter's table of host inodes (one entry
// per host (st_dev, st_ino), like libfuse's passthrough_hp), each holding an
// O_PATH fd of the host object, the kernel's lookup count and, for regular
// files, the FileData shared by every open and every hard link.
// FUSE node ids are the addresses of Inode objects (the root is
// FUSE_ROOT_ID); an Inode lives while the kernel knows it or a handle holds it.
//
// Lock order: Inode::mu may be held while taking InodeTable::mu_, never the
// reverse; InodeTable::mu_ is a leaf held for no syscall and no reply;
// never hold two Inode::mu at once. Inode::mu is held across the syscalls
// that open a file's FileData (so there is one per inode), never across a
// reply or a data read/write (FileData locks block ranges itself).
// Thread safety: InodeTable methods may be called concurrently.
#pragma once

#include <sys/stat.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "store/backing.h"
#include "store/data_store.h"
#include "store/names.h"

namespace cfs::fs {

struct Inode : std::enable_shared_from_this<Inode> {
  Inode(store::Backing* backing, int fd, const struct stat& st);
  ~Inode();
  Inode(const Inode&) = delete;
  Inode& operator=(const Inode&) = delete;

  store::Backing* const backing;
  const int fd;  // O_PATH | O_NOFOLLOW, owned
  const dev_t dev;
  const ino_t ino;
  const mode_t type;  // S_IFMT bits

  uint64_t nlookup = 0;  // guarded by InodeTable::mu_

  // The mtime of the last write (ns since the epoch, 0 = none): writes do
  // not touch the inode file; this is set on it at fsync/release.
  std::atomic<int64_t> pending_mtime_ns{0};

  // Whether the object has a security.capability xattr: -1 unknown, 0 no,
  // 1 yes. The kernel asks for it before every write (file_remove_privs);
  // a known "no" is answered without a host syscall.
  std::atomic<int> has_caps{-1};

  std::mutex mu;  // guards the fields below
  std::optional<store::DirId> dir_id;        // directories, once read
  std::shared_ptr<store::FileData> data;     // regular files, while open
  int opens = 0;                             // open handles
  bool deleted = false;                      // last link gone: delete data at last release
  std::optional<uint64_t> known_size;        // regular files, while not open
  std::optional<uint64_t> known_allocated;   // ditto, bytes
  // Directories whose entry for this inode is not durable yet (create,
  // link, rename): fsynced on the first fsync of this inode.
  std::vector<std::shared_ptr<Inode>> undurable_parents;
};

class InodeTable {
 public:
  explicit InodeTable(store::Backing* backing) : backing_(backing) {}

  // Finds or adds the inode of the host object `fd` refers to (`st` is its
  // stat) and counts one kernel lookup. Takes ownership of `fd` (closed if
  // the inode was known already).
  std::shared_ptr<Inode> Intern(int fd, const struct stat& st);
  // The inode of a host object if the table knows it, else null.
  std::shared_ptr<Inode> Find(dev_t dev, ino_t ino);
  // The kernel forgets `n` lookups; the entry goes at zero.
  void Forget(Inode* inode, uint64_t n);
  size_t size();
  // Every inode the kernel knows now (for cache invalidation).
  std::vector<std::shared_ptr<Inode>> Snapshot();

 private:
  store::Backing* backing_;
  std::mutex mu_;
  std::map<std::pair<dev_t, ino_t>, std::shared_ptr<Inode>> inodes_;  // guarded by mu_
};

}  // namespace cfs::fs
