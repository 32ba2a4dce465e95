#include "snapshot/volume_copy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <time.h>

#include <array>
#include <cstring>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "common/result.h"
#include "store/chunk_cow.h"

namespace cfs::snapshot {
namespace {

// An fd of the backing, closed on destruction.
class BFd {
 public:
  BFd(store::Backing* b, int fd) : b_(b), fd_(fd) {}
  BFd(BFd&& o) noexcept : b_(o.b_), fd_(std::exchange(o.fd_, -1)) {}
  BFd(const BFd&) = delete;
  BFd& operator=(const BFd&) = delete;
  ~BFd() {
    if (fd_ >= 0) (void)b_->Close(fd_);
  }
  int fd() const { return fd_; }

 private:
  store::Backing* b_;
  int fd_;
};

Result<BFd> OpenB(store::Backing* b, int dirfd, const std::string& name, int flags, mode_t mode = 0) {
  CFS_ASSIGN_OR_RETURN(int fd, b->OpenAt(dirfd, name, flags | O_CLOEXEC, mode));
  return BFd(b, fd);
}

Result<BFd> OpenDir(store::Backing* b, int dirfd, const std::string& name) {
  return OpenB(b, dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
}

bool IsVanished(const Status& s) { return s.sys_errno() == ENOENT; }

Status HardLinkChange(std::string what) { return Status(Code::kUnavailable, std::move(what), EMLINK); }

// Removes `name` in `dir`, a directory with everything in it, or a file.
Status RemoveBackingEntry(store::Backing* b, int dir, const std::string& name) {
  CFS_ASSIGN_OR_RETURN(struct stat st, b->FstatAt(dir, name, AT_SYMLINK_NOFOLLOW));
  if (!S_ISDIR(st.st_mode)) return b->UnlinkAt(dir, name, 0);
  {
    CFS_ASSIGN_OR_RETURN(BFd d, OpenDir(b, dir, name));
    CFS_ASSIGN_OR_RETURN(std::vector<std::string> names, b->ListDir(d.fd()));
    for (const auto& n : names) CFS_RETURN_IF_ERROR(RemoveBackingEntry(b, d.fd(), n));
  }
  return b->UnlinkAt(dir, name, AT_REMOVEDIR);
}

class TreeCopier {
 public:
  TreeCopier(store::Backing* b, const CopyOptions& o, CopyStats* stats) : b_(b), o_(o), stats_(stats) {}

  // Copies the contents of directory `src` into the existing directory `dst`
  // (with `reuse`, making `dst` equal to `src` from what it holds).
  Status CopyDir(int src, int dst, const std::string& rel) {
    CFS_ASSIGN_OR_RETURN(std::vector<std::string> names, b_->ListDir(src));
    if (reuse_) {
      const std::set<std::string> wanted(names.begin(), names.end());
      CFS_ASSIGN_OR_RETURN(std::vector<std::string> had, b_->ListDir(dst));
      for (const auto& name : had) {
        if (!wanted.contains(name)) CFS_RETURN_IF_ERROR(RemoveEntry(dst, name));
      }
    }
    for (const auto& name : names) {
      int64_t at = RealtimeNs();
      Result<struct stat> st = b_->FstatAt(src, name, AT_SYMLINK_NOFOLLOW);
      const std::string child = rel.empty() ? name : rel + "/" + name;
      Status s = !st.ok() ? st.status() : reuse_ ? ReuseOrCopy(src, dst, name, child, *st, at)
                                                 : CopyEntry(src, dst, name, child, *st, at);
      // An entry renamed or deleted under a pre-copy: CatchUpDir settles it
      // (a partial copy left here is not in seen_, so it is redone).
      if (!s.ok() && lenient_) continue;
      CFS_RETURN_IF_ERROR(s);
      ++stats_->tree_entries;
    }
    if (o_.sync) CFS_RETURN_IF_ERROR(b_->Fsync(dst, false));
    return Status::Ok();
  }

  // Brings the copy `dst` of directory `src` to src's present state: every
  // entry is stat'ed; only entries new or changed since they were copied
  // (another inode, another ctime, or a ctime too recent to tell) are copied
  // again, entries gone are removed. Aborted when a hard-linked inode file
  // is involved (the caller copies the whole tree instead).
  Status CatchUpDir(int src, int dst, const std::string& rel) {
    CFS_ASSIGN_OR_RETURN(std::vector<std::string> names, b_->ListDir(src));
    const std::set<std::string> live(names.begin(), names.end());
    CFS_ASSIGN_OR_RETURN(std::vector<std::string> had, b_->ListDir(dst));
    for (const auto& name : had) {
      if (!live.contains(name)) CFS_RETURN_IF_ERROR(RemoveEntry(dst, name));
    }
    const std::set<std::string> kept(had.begin(), had.end());
    for (const auto& name : names) {
      const std::string child = rel.empty() ? name : rel + "/" + name;
      int64_t at = RealtimeNs();
      CFS_ASSIGN_OR_RETURN(struct stat st, b_->FstatAt(src, name, AT_SYMLINK_NOFOLLOW));
      ++stats_->tree_entries;
      auto it = seen_.find(child);
      bool same_inode = it != seen_.end() && it->second.ino == st.st_ino &&
                        it->second.type == (st.st_mode & S_IFMT) && kept.contains(name);
      if (same_inode && S_ISDIR(st.st_mode)) {
        CFS_ASSIGN_OR_RETURN(BFd s, OpenDir(b_, src, name));
        CFS_ASSIGN_OR_RETURN(BFd d, OpenDir(b_, dst, name));
        CFS_RETURN_IF_ERROR(CatchUpDir(s.fd(), d.fd(), child));
        CFS_RETURN_IF_ERROR(CopyAttrs(s.fd(), d.fd(), st));
        continue;
      }
      if (same_inode && SameTime(it->second.ctime, st.st_ctim) && !Recent(st.st_ctim, it->second.at)) continue;
      if (st.st_nlink > 1 || (it != seen_.end() && it->second.nlink > 1)) {
        return HardLinkChange("a hard-linked inode file changed during the tree copy");
      }
      if (reuse_) {
        CFS_RETURN_IF_ERROR(ReuseOrCopy(src, dst, name, child, st, at));
        continue;
      }
      if (kept.contains(name)) CFS_RETURN_IF_ERROR(RemoveEntry(dst, name));
      CFS_RETURN_IF_ERROR(CopyEntry(src, dst, name, child, st, at));
    }
    return Status::Ok();
  }

  void set_root(int dst_root) { dst_root_ = dst_root; }
  void set_catching_up() {
    catching_up_ = true;
    lenient_ = false;
  }
  void set_lenient() { lenient_ = true; }
  void set_reuse() { reuse_ = true; }

 private:
  struct Seen {
    ino_t ino;
    struct timespec ctime;
    mode_t type;
    nlink_t nlink;
    int64_t at;  // CLOCK_REALTIME (ns) just before it was stat'ed and copied
  };

  static int64_t RealtimeNs() {
    struct timespec ts;
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
  }
  static bool SameTime(const struct timespec& a, const struct timespec& b) {
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
  }
  // Inode times come from a coarse clock (a tick of up to 10 ms): a change
  // made just after an entry was copied may leave its ctime as it was.
  // An entry whose ctime is within 100 ms of its copy is copied again.
  static bool Recent(const struct timespec& ctime, int64_t at) {
    return int64_t{ctime.tv_sec} * 1000000000 + ctime.tv_nsec >= at - 100'000'000;
  }

  Status CopyEntry(int src, int dst, const std::string& name, const std::string& child, const struct stat& st,
                   int64_t at) {
    if (S_ISDIR(st.st_mode)) {
      CFS_RETURN_IF_ERROR(b_->MkdirAt(dst, name, 0700));
      CFS_ASSIGN_OR_RETURN(BFd s, OpenDir(b_, src, name));
      CFS_ASSIGN_OR_RETURN(BFd d, OpenDir(b_, dst, name));
      CFS_RETURN_IF_ERROR(CopyDir(s.fd(), d.fd(), child));
      CFS_RETURN_IF_ERROR(CopyAttrs(s.fd(), d.fd(), st));
    } else if (S_ISREG(st.st_mode)) {
      CFS_RETURN_IF_ERROR(CopyFile(src, dst, name, child, st));
    } else if (S_ISLNK(st.st_mode)) {
      CFS_ASSIGN_OR_RETURN(std::string target, b_->ReadlinkAt(src, name));
      CFS_RETURN_IF_ERROR(b_->SymlinkAt(target, dst, name));
      CFS_RETURN_IF_ERROR(ChownIfNeeded(dst, name, st));
      CFS_RETURN_IF_ERROR(b_->UtimensAt(dst, name, Times(st).data(), AT_SYMLINK_NOFOLLOW));
    } else if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) {
      CFS_RETURN_IF_ERROR(b_->MknodAt(dst, name, st.st_mode, 0));
      CFS_RETURN_IF_ERROR(ChownIfNeeded(dst, name, st));
      CFS_RETURN_IF_ERROR(b_->UtimensAt(dst, name, Times(st).data(), AT_SYMLINK_NOFOLLOW));
    } else {
      return DataLoss("tree/ holds a device node; a volume never does");
    }
    seen_[child] = Seen{st.st_ino, st.st_ctim, st.st_mode & S_IFMT, st.st_nlink, at};
    return Status::Ok();
  }

  // `dst`/`name` may hold an earlier copy of the entry: an entry of the same
  // kind is brought to `st` in place (a directory recursively, a regular
  // file rewritten only if its bytes differ, a symlink kept if its target
  // is the same), which makes no new host inode: re-creating thousands per
  // replica shipment is what costs (ext4 without a journal searches past
  // every inode freed in the last minutes for each one it allocates).
  // Hard-linked files and anything else are removed and copied anew.
  Status ReuseOrCopy(int src, int dst, const std::string& name, const std::string& child, const struct stat& st,
                     int64_t at) {
    Result<struct stat> old = b_->FstatAt(dst, name, AT_SYMLINK_NOFOLLOW);
    if (!old.ok() && !IsVanished(old.status())) return old.status();
    const bool same_kind = old.ok() && (old->st_mode & S_IFMT) == (st.st_mode & S_IFMT);
    if (same_kind && S_ISDIR(st.st_mode)) {
      CFS_ASSIGN_OR_RETURN(BFd s, OpenDir(b_, src, name));
      CFS_ASSIGN_OR_RETURN(BFd d, OpenDir(b_, dst, name));
      CFS_RETURN_IF_ERROR(CopyDir(s.fd(), d.fd(), child));
      CFS_RETURN_IF_ERROR(CopyAttrs(s.fd(), d.fd(), st));
    } else if (same_kind && S_ISREG(st.st_mode) && st.st_nlink == 1 && old->st_nlink == 1 &&
               ((old->st_mode & S_IWUSR) || ::geteuid() == 0)) {  // else not writable here: made anew
      CFS_ASSIGN_OR_RETURN(BFd in, OpenB(b_, src, name, O_RDONLY | O_NOFOLLOW));
      CFS_ASSIGN_OR_RETURN(BFd out, OpenB(b_, dst, name, O_RDWR | O_NOFOLLOW));
      CFS_ASSIGN_OR_RETURN(bool same, SameBytes(in.fd(), out.fd(), st.st_size, old->st_size));
      if (!same) {
        CFS_RETURN_IF_ERROR(b_->Ftruncate(out.fd(), 0));
        CFS_RETURN_IF_ERROR(CopyBytes(in.fd(), out.fd()));
      }
      CFS_RETURN_IF_ERROR(CopyAttrs(in.fd(), out.fd(), st));
      if (o_.sync) CFS_RETURN_IF_ERROR(b_->Fsync(out.fd(), false));
    } else if (same_kind && S_ISLNK(st.st_mode) && SameTarget(src, dst, name)) {
      CFS_RETURN_IF_ERROR(ChownIfNeeded(dst, name, st));
      CFS_RETURN_IF_ERROR(b_->UtimensAt(dst, name, Times(st).data(), AT_SYMLINK_NOFOLLOW));
    } else {
      if (old.ok()) CFS_RETURN_IF_ERROR(RemoveEntry(dst, name));
      return CopyEntry(src, dst, name, child, st, at);
    }
    seen_[child] = Seen{st.st_ino, st.st_ctim, st.st_mode & S_IFMT, st.st_nlink, at};
    return Status::Ok();
  }

  bool SameTarget(int src, int dst, const std::string& name) {
    Result<std::string> a = b_->ReadlinkAt(src, name), b = b_->ReadlinkAt(dst, name);
    return a.ok() && b.ok() && *a == *b;
  }

  // Whether `a` (`a_size` bytes) and `b` hold the same bytes.
  Result<bool> SameBytes(int a, int b, off_t a_size, off_t b_size) {
    if (a_size != b_size) return false;
    for (off_t off = 0; off < a_size;) {
      CFS_ASSIGN_OR_RETURN(size_t got, b_->PRead(a, buf_.data(), buf_.size(), off));
      if (got == 0) return false;  // shrank meanwhile: copy it
      CFS_ASSIGN_OR_RETURN(size_t got_b, b_->PRead(b, other_.data(), got, off));
      if (got_b != got || std::memcmp(buf_.data(), other_.data(), got) != 0) return false;
      off += static_cast<off_t>(got);
    }
    return true;
  }

  Status CopyBytes(int in, int out) {
    for (off_t off = 0;;) {
      CFS_ASSIGN_OR_RETURN(size_t got, b_->PRead(in, buf_.data(), buf_.size(), off));
      if (got == 0) return Status::Ok();
      CFS_RETURN_IF_ERROR(b_->PWrite(out, buf_.data(), got, off));
      off += static_cast<off_t>(got);
    }
  }

  // Removes entry `name` of the copy (a directory with everything in it).
  Status RemoveEntry(int dir, const std::string& name) { return RemoveBackingEntry(b_, dir, name); }

  static std::array<struct timespec, 2> Times(const struct stat& st) { return {st.st_atim, st.st_mtim}; }

  Status ChownIfNeeded(int dir, const std::string& name, const struct stat& st) {
    CFS_ASSIGN_OR_RETURN(struct stat now, b_->FstatAt(dir, name, AT_SYMLINK_NOFOLLOW));
    if (now.st_uid == st.st_uid && now.st_gid == st.st_gid) return Status::Ok();
    return b_->FchownAt(dir, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
  }

  // Owner, mode, xattrs, times (last: the rest would touch ctime only).
  Status CopyAttrs(int src, int dst, const struct stat& st) {
    CFS_ASSIGN_OR_RETURN(struct stat now, b_->Fstat(dst));
    if (now.st_uid != st.st_uid || now.st_gid != st.st_gid) {
      CFS_RETURN_IF_ERROR(b_->Fchown(dst, st.st_uid, st.st_gid));
    }
    CFS_RETURN_IF_ERROR(b_->Fchmod(dst, st.st_mode & 07777));
    CFS_RETURN_IF_ERROR(CopyXattrs(src, dst));
    return b_->Futimens(dst, Times(st).data());
  }

  // The attribute names of `fd`, each followed by a NUL ("" where the host
  // has no xattrs).
  Result<std::string> XattrNames(int fd) {
    std::vector<char> list(4096);
    Result<size_t> n = b_->Flistxattr(fd, list.data(), list.size());
    if (!n.ok() && n.status().sys_errno() == ERANGE) {
      list.resize(65536);
      n = b_->Flistxattr(fd, list.data(), list.size());
    }
    if (!n.ok()) return n.status().sys_errno() == ENOTSUP ? Result<std::string>(std::string()) : n.status();
    return std::string(list.data(), *n);
  }

  Status CopyXattrs(int src, int dst) {
    CFS_ASSIGN_OR_RETURN(std::string names, XattrNames(src));
    std::vector<uint8_t> value(65536);
    for (size_t i = 0; i < names.size();) {
      std::string name(&names[i]);
      i += name.size() + 1;
      CFS_ASSIGN_OR_RETURN(size_t len, b_->Fgetxattr(src, name, value.data(), value.size()));
      CFS_RETURN_IF_ERROR(b_->Fsetxattr(dst, name, value.data(), len, 0));
    }
    return reuse_ ? DropXattrsNotIn(dst, '\0' + names) : Status::Ok();
  }

  // Removes the attributes of `dst` whose names are not in `keep` (a NUL,
  // then names each followed by a NUL): an entry reused from an earlier
  // copy may have more.
  Status DropXattrsNotIn(int dst, const std::string& keep) {
    CFS_ASSIGN_OR_RETURN(std::string names, XattrNames(dst));
    for (size_t i = 0; i < names.size();) {
      std::string name(&names[i]);
      i += name.size() + 1;
      if (keep.find('\0' + name + '\0') == std::string::npos) CFS_RETURN_IF_ERROR(b_->Fremovexattr(dst, name));
    }
    return Status::Ok();
  }


  Status CopyFile(int src, int dst, const std::string& name, const std::string& rel, const struct stat& st) {
    auto key = std::make_pair(st.st_dev, st.st_ino);
    if (st.st_nlink > 1 && catching_up_) {
      return HardLinkChange("a hard-linked inode file appeared during the tree copy");
    }
    if (st.st_nlink > 1) {
      auto it = links_.find(key);
      if (it != links_.end()) return b_->LinkAt(dst_root_, it->second, dst, name, 0);
    }
    CFS_ASSIGN_OR_RETURN(BFd in, OpenB(b_, src, name, O_RDONLY | O_NOFOLLOW));
    CFS_ASSIGN_OR_RETURN(BFd out, OpenB(b_, dst, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600));
    CFS_RETURN_IF_ERROR(CopyBytes(in.fd(), out.fd()));
    CFS_RETURN_IF_ERROR(CopyAttrs(in.fd(), out.fd(), st));
    if (o_.sync) CFS_RETURN_IF_ERROR(b_->Fsync(out.fd(), false));
    if (st.st_nlink > 1) links_.emplace(key, rel);
    return Status::Ok();
  }

  store::Backing* b_;
  CopyOptions o_;
  CopyStats* stats_;
  int dst_root_ = -1;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;  // first copy of each multi-link inode file
  std::map<std::string, Seen> seen_;  // every entry copied, by path under tree/
  bool catching_up_ = false;
  bool lenient_ = false;  // pre-copy: entries failing to copy are skipped
  bool reuse_ = false;    // the destination holds an earlier copy: keep what is equal
  // File bytes in flight (CopyBytes, SameBytes), reused from file to file.
  std::vector<uint8_t> buf_ = std::vector<uint8_t>(64 * 1024), other_ = std::vector<uint8_t>(64 * 1024);
};

bool IsChunkName(const std::string& name) {
  if (name.empty() || name.size() > 10) return false;
  for (char c : name) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// `dir`/`name`, made (or, with `reuse`, kept if it is there).
Status MkdirReusing(store::Backing* b, int dir, const std::string& name, bool reuse) {
  Status s = b->MkdirAt(dir, name, 0700);
  return reuse && s.sys_errno() == EEXIST ? Status::Ok() : s;
}

// With `reuse`: removes the entries of `dst` not in `keep`.
Status RemoveOthers(store::Backing* b, int dst, const std::vector<std::string>& keep, bool reuse) {
  if (!reuse) return Status::Ok();
  const std::set<std::string> wanted(keep.begin(), keep.end());
  CFS_ASSIGN_OR_RETURN(std::vector<std::string> had, b->ListDir(dst));
  for (const auto& name : had) {
    if (!wanted.contains(name)) CFS_RETURN_IF_ERROR(RemoveBackingEntry(b, dst, name));
  }
  return Status::Ok();
}

// objects/<ab>/<file id>/<chunk index>: directories made, chunks linked.
Status LinkObjects(store::Backing* b, int src, int dst, const CopyOptions& o, CopyStats* stats) {
  CFS_ASSIGN_OR_RETURN(std::vector<std::string> shards, b->ListDir(src));
  CFS_RETURN_IF_ERROR(RemoveOthers(b, dst, shards, o.reuse));
  for (const auto& shard : shards) {
    CFS_ASSIGN_OR_RETURN(BFd s1, OpenDir(b, src, shard));
    CFS_RETURN_IF_ERROR(MkdirReusing(b, dst, shard, o.reuse));
    CFS_ASSIGN_OR_RETURN(BFd d1, OpenDir(b, dst, shard));
    CFS_ASSIGN_OR_RETURN(std::vector<std::string> files, b->ListDir(s1.fd()));
    CFS_RETURN_IF_ERROR(RemoveOthers(b, d1.fd(), files, o.reuse));
    for (const auto& file : files) {
      Result<BFd> s2 = OpenDir(b, s1.fd(), file);
      if (!s2.ok() && o.tolerate_vanished_chunks && IsVanished(s2.status())) continue;
      CFS_RETURN_IF_ERROR(s2.status());
      CFS_RETURN_IF_ERROR(MkdirReusing(b, d1.fd(), file, o.reuse));
      CFS_ASSIGN_OR_RETURN(BFd d2, OpenDir(b, d1.fd(), file));
      CFS_ASSIGN_OR_RETURN(std::vector<std::string> chunks, b->ListDir(s2->fd()));
      // e.g. a leftover <n>.cow of an interrupted break
      std::erase_if(chunks, [](const std::string& c) { return !IsChunkName(c); });
      CFS_RETURN_IF_ERROR(RemoveOthers(b, d2.fd(), chunks, o.reuse));
      for (const auto& chunk : chunks) {
        Status l = o.reuse ? store::LinkOver(b, s2->fd(), d2.fd(), chunk).status()
                           : b->LinkAt(s2->fd(), chunk, d2.fd(), chunk, 0);
        if (!l.ok() && o.tolerate_vanished_chunks && IsVanished(l)) continue;
        CFS_RETURN_IF_ERROR(l);
        ++stats->chunks_linked;
      }
      if (o.sync) CFS_RETURN_IF_ERROR(b->Fsync(d2.fd(), false));
    }
    if (o.sync) CFS_RETURN_IF_ERROR(b->Fsync(d1.fd(), false));
  }
  if (o.sync) CFS_RETURN_IF_ERROR(b->Fsync(dst, false));
  return Status::Ok();
}

Status SyncDirTree(store::Backing* b, int dir, bool files) {
  CFS_ASSIGN_OR_RETURN(std::vector<std::string> names, b->ListDir(dir));
  for (const auto& name : names) {
    CFS_ASSIGN_OR_RETURN(struct stat st, b->FstatAt(dir, name, AT_SYMLINK_NOFOLLOW));
    if (S_ISDIR(st.st_mode)) {
      CFS_ASSIGN_OR_RETURN(BFd d, OpenDir(b, dir, name));
      CFS_RETURN_IF_ERROR(SyncDirTree(b, d.fd(), files));
    } else if (S_ISREG(st.st_mode) && files) {
      CFS_ASSIGN_OR_RETURN(BFd f, OpenB(b, dir, name, O_RDONLY | O_NOFOLLOW));
      CFS_RETURN_IF_ERROR(b->Fsync(f.fd(), false));
    }
  }
  return b->Fsync(dir, false);
}

}  // namespace

Status CopyVolumeTree(store::Backing* b, const std::string& src_dir, const std::string& dst_dir,
                      const CopyOptions& options, CopyStats* stats) {
  CopyStats local;
  if (stats == nullptr) stats = &local;
  CFS_ASSIGN_OR_RETURN(BFd src, OpenDir(b, AT_FDCWD, src_dir));
  CFS_ASSIGN_OR_RETURN(BFd dst, OpenDir(b, AT_FDCWD, dst_dir));
  CFS_ASSIGN_OR_RETURN(struct stat tree_st, b->FstatAt(src.fd(), "tree", AT_SYMLINK_NOFOLLOW));
  CFS_RETURN_IF_ERROR(MkdirReusing(b, dst.fd(), "tree", options.reuse));
  CFS_ASSIGN_OR_RETURN(BFd st, OpenDir(b, src.fd(), "tree"));
  CFS_ASSIGN_OR_RETURN(BFd dt, OpenDir(b, dst.fd(), "tree"));
  TreeCopier copier(b, options, stats);
  copier.set_root(dt.fd());
  if (options.reuse) copier.set_reuse();
  CFS_RETURN_IF_ERROR(copier.CopyDir(st.fd(), dt.fd(), ""));
  CFS_RETURN_IF_ERROR(b->Fchmod(dt.fd(), tree_st.st_mode & 07777));
  return b->Futimens(dt.fd(), std::array<struct timespec, 2>{tree_st.st_atim, tree_st.st_mtim}.data());
}

Status CopyVolumeCow(store::Backing* b, const std::string& src_dir, const std::string& dst_dir,
                     const CopyOptions& options, CopyStats* stats) {
  CopyStats local;
  if (stats == nullptr) stats = &local;
  CFS_RETURN_IF_ERROR(CopyVolumeTree(b, src_dir, dst_dir, options, stats));
  return CopyVolumeObjects(b, src_dir, dst_dir, options, stats);
}

Status CopyVolumeObjects(store::Backing* b, const std::string& src_dir, const std::string& dst_dir,
                         const CopyOptions& options, CopyStats* stats) {
  CopyStats local;
  if (stats == nullptr) stats = &local;
  CFS_ASSIGN_OR_RETURN(BFd src, OpenDir(b, AT_FDCWD, src_dir));
  CFS_ASSIGN_OR_RETURN(BFd dst, OpenDir(b, AT_FDCWD, dst_dir));
  CFS_RETURN_IF_ERROR(MkdirReusing(b, dst.fd(), "objects", options.reuse));
  {
    CFS_ASSIGN_OR_RETURN(BFd so, OpenDir(b, src.fd(), "objects"));
    CFS_ASSIGN_OR_RETURN(BFd d, OpenDir(b, dst.fd(), "objects"));
    CFS_RETURN_IF_ERROR(LinkObjects(b, so.fd(), d.fd(), options, stats));
  }
  if (options.sync) CFS_RETURN_IF_ERROR(b->Fsync(dst.fd(), false));
  return Status::Ok();
}

struct LiveTreeCopy::Impl {
  Impl(store::Backing* b, std::string src, std::string dst, bool reuse)
      : backing(b), src_dir(std::move(src)), dst_dir(std::move(dst)), reuse(reuse),
        copier(b, CopyOptions{.sync = false}, &stats) {}
  store::Backing* backing;
  std::string src_dir, dst_dir;
  bool reuse;
  CopyStats stats;
  TreeCopier copier;
};

LiveTreeCopy::LiveTreeCopy(store::Backing* b, std::string src_dir, std::string dst_dir, bool reuse)
    : impl_(std::make_unique<Impl>(b, std::move(src_dir), std::move(dst_dir), reuse)) {}
LiveTreeCopy::~LiveTreeCopy() = default;

Status LiveTreeCopy::Precopy(CopyStats* stats) {
  Impl& m = *impl_;
  store::Backing* b = m.backing;
  CFS_ASSIGN_OR_RETURN(BFd src, OpenDir(b, AT_FDCWD, m.src_dir));
  CFS_ASSIGN_OR_RETURN(BFd dst, OpenDir(b, AT_FDCWD, m.dst_dir));
  CFS_RETURN_IF_ERROR(MkdirReusing(b, dst.fd(), "tree", m.reuse));
  CFS_ASSIGN_OR_RETURN(BFd st, OpenDir(b, src.fd(), "tree"));
  CFS_ASSIGN_OR_RETURN(BFd dt, OpenDir(b, dst.fd(), "tree"));
  m.stats = CopyStats{};
  m.copier.set_root(dt.fd());
  m.copier.set_lenient();
  if (m.reuse) m.copier.set_reuse();
  Status s = m.copier.CopyDir(st.fd(), dt.fd(), "");
  m.copier.set_root(-1);
  if (stats) stats->tree_entries = m.stats.tree_entries;
  return s;
}

Status LiveTreeCopy::CatchUp(CopyStats* stats) {
  Impl& m = *impl_;
  store::Backing* b = m.backing;
  CFS_ASSIGN_OR_RETURN(BFd src, OpenDir(b, AT_FDCWD, m.src_dir));
  CFS_ASSIGN_OR_RETURN(BFd dst, OpenDir(b, AT_FDCWD, m.dst_dir));
  CFS_ASSIGN_OR_RETURN(struct stat tree_st, b->FstatAt(src.fd(), "tree", AT_SYMLINK_NOFOLLOW));
  CFS_ASSIGN_OR_RETURN(BFd st, OpenDir(b, src.fd(), "tree"));
  CFS_ASSIGN_OR_RETURN(BFd dt, OpenDir(b, dst.fd(), "tree"));
  m.stats = CopyStats{};
  m.copier.set_catching_up();
  CFS_RETURN_IF_ERROR(m.copier.CatchUpDir(st.fd(), dt.fd(), ""));
  if (stats) stats->tree_entries = m.stats.tree_entries;
  CFS_RETURN_IF_ERROR(b->Fchmod(dt.fd(), tree_st.st_mode & 07777));
  return b->Futimens(dt.fd(), std::array<struct timespec, 2>{tree_st.st_atim, tree_st.st_mtim}.data());
}

bool IsHardLinkChange(const Status& s) { return s.code() == Code::kUnavailable && s.sys_errno() == EMLINK; }

Status SyncVolumeCopy(store::Backing* b, const std::string& dir, bool chunks) {
  CFS_ASSIGN_OR_RETURN(BFd d, OpenDir(b, AT_FDCWD, dir));
  {
    CFS_ASSIGN_OR_RETURN(BFd t, OpenDir(b, d.fd(), "tree"));
    CFS_RETURN_IF_ERROR(SyncDirTree(b, t.fd(), true));
  }
  {
    CFS_ASSIGN_OR_RETURN(BFd o, OpenDir(b, d.fd(), "objects"));
    CFS_RETURN_IF_ERROR(SyncDirTree(b, o.fd(), chunks));
  }
  return b->Fsync(d.fd(), false);
}

}  // namespace cfs::snapshot
