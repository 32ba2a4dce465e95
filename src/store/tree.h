// Tree: the namespace of a volume on the host (tree/, docs/format/tree.md):
// directory ids, encrypted and long entry names, directory creation and
// removal that never leave a visible directory without its id, symlinks
// and extended attributes. Every host syscall goes through Backing.
// The FUSE adapter keeps the inode table; Tree works on host fds it is
// given (O_PATH fds are fine as directory fds) and holds no state of its
// own beyond the codec.
// Thread safety: all methods may be called concurrently; callers serialize
// conflicting changes of one directory entry (the kernel does, for FUSE).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "store/backing.h"
#include "store/names.h"

namespace cfs::store {

// Owner of a new entry: `set` false leaves the host's choice (a daemon not
// run by root creates as itself).
struct Owner {
  bool set = false;
  uid_t uid = 0;
  gid_t gid = 0;
};

struct TreeEntry {
  std::string name;       // plaintext
  std::string host_name;  // as stored in the host directory
};

class Tree {
 public:
  Tree(Backing* backing, std::unique_ptr<NameCodec> codec);
  ~Tree();

  NameCodec& codec() { return *codec_; }
  bool encrypted() const { return codec_->encrypted(); }

  // Writes a fresh `.cfsdir` into the directory `dirfd` (which must not
  // have one) and makes it durable (file and directory fsynced). For tree/
  // itself, and new directories on hosts without user xattrs.
  Status WriteNewDirId(int dirfd);
  // The id of a new directory (not yet under its name): the `user.cfs.dirid`
  // attribute of the host directory, or WriteNewDirId where the host has
  // no user xattrs. The attribute lives in the directory's own inode, so
  // the id is on disk no later than the directory's name or any entry in
  // it (a journaling host commits metadata in order): no fsync needed.
  Status WriteDirIdOfNewDirectory(int dirfd);
  // The directory's id (all zeros on unencrypted volumes): its attribute,
  // else its `.cfsdir`. kDataLoss (EIO) if neither is there or the one
  // found is malformed.
  Result<DirId> ReadDirId(int dirfd);

  // Host name of `name` in a directory, for lookups: changes nothing.
  Result<std::string> HostName(const DirId& dir, std::string_view name);
  // Host name for a new entry `name` in `dirfd`: for a long name, writes
  // its sidecar (durably) first.
  Result<std::string> PrepareName(int dirfd, const DirId& dir, std::string_view name);
  // After the entry `host_name` has left `dirfd` (unlink, rmdir, rename
  // away): removes its sidecar if it is a long name. Best effort (an orphan
  // sidecar is harmless); failures are logged.
  void ReleaseName(int dirfd, const std::string& host_name);

  // Decoded entries of a directory. Reserved host names are skipped; names
  // that do not decode (tampering) are skipped with a warning naming the
  // directory id.
  Result<std::vector<TreeEntry>> List(int dirfd, const DirId& dir);

  // Creates directory `name` in `parent_fd` with exactly `mode` (setgid
  // included) and `owner`; on encrypted volumes its id is durable before it
  // appears under its name. EEXIST if the name exists. Returns the host name.
  Result<std::string> MakeDirectory(int parent_fd, const DirId& parent, std::string_view name, mode_t mode,
                                    const Owner& owner);
  // Removes the directory `host_name` of `parent_fd` if it holds no user
  // entry (ENOTEMPTY otherwise). Does not release the name's sidecar.
  Status RemoveDirectory(int parent_fd, const std::string& host_name);
  // Moves an empty directory `host_name` out of the way under a temporary
  // name (for rename over an empty directory, whose `.cfsdir` makes it
  // non-empty on the host). Returns the temporary name. ENOTEMPTY if not
  // empty. Unencrypted volumes: returns "" and does nothing.
  Result<std::string> StashEmptyDirectory(int parent_fd, const std::string& host_name);
  // Undoes StashEmptyDirectory (puts it back under `host_name`).
  Status UnstashDirectory(int parent_fd, const std::string& temp_name, const std::string& host_name);
  // Deletes a stashed directory for good.
  Status DestroyStashed(int parent_fd, const std::string& temp_name);

  // Creates a symlink `name` -> `target` (target encrypted). Returns the host name.
  Result<std::string> MakeSymlink(int parent_fd, const DirId& parent, std::string_view name,
                                  std::string_view target, const Owner& owner);
  // Target of the symlink behind `fd` (an O_PATH fd of the symlink).
  Result<std::string> ReadSymlink(int fd);

  // Extended attributes on `fd` (O_PATH fds are fine). `size` 0 asks for
  // the size. ENODATA if absent, ERANGE if `size` is too small.
  Result<size_t> GetXattr(int fd, std::string_view name, void* value, size_t size);
  Status SetXattr(int fd, std::string_view name, ByteView value, int flags);
  // NUL-separated user-visible names.
  Result<std::string> ListXattr(int fd);
  Status RemoveXattr(int fd, std::string_view name);

 private:
  Status WriteSidecar(int dirfd, const std::string& host_name, const std::string& contents);
  Result<std::string> ReadSidecar(int dirfd, const std::string& long_host_name);
  Result<bool> HoldsUserEntries(int dirfd);
  Status RemoveReserved(int dirfd);
  std::string TempName() const;

  Backing* backing_;
  std::unique_ptr<NameCodec> codec_;
};

}  // namespace cfs::store
