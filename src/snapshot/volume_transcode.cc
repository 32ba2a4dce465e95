#include "snapshot/volume_transcode.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <map>
#include <set>
#include <vector>

#include <fmt/format.h>

#include "store/data_store.h"
#include "store/tree.h"
#include "store/tree_fd.h"
#include "store/volume.h"
#include "store/volume_keys.h"

namespace cfs::snapshot {
namespace {

using store::ScopedFd;
constexpr size_t kPiece = 1 << 20;
constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

std::array<struct timespec, 2> Times(const struct stat& st) { return {st.st_atim, st.st_mtim}; }

bool AllZero(const uint8_t* p, size_t n) {
  return std::all_of(p, p + n, [](uint8_t c) { return c == 0; });
}

// One side of the copy: a volume (keys null when unencrypted) or, for the
// destination only, a plain directory (tree and store null).
struct Side {
  std::unique_ptr<store::VolumeKeys> keys;
  std::unique_ptr<store::Tree> tree;
  std::unique_ptr<store::DataStore> store;
  ScopedFd vol, root;  // the volume directory, and tree/ (or the plain directory)
};

struct Dir {
  int fd;
  store::DirId id;
  std::string rel;  // host path below the destination root ("" for the root)
};

class Transcoder {
 public:
  Transcoder(store::Backing* b, const TranscodeOptions& o, TranscodeStats* st) : b_(b), o_(o), st_(st) {}

  Status OpenSource(const std::string& dir, const SecretBytes* key) {
    return OpenVolume(dir, key, /*read_only=*/true, &src_);
  }

  Status OpenDestination(const std::string& dir, const SecretBytes* key) {
    if (key == nullptr) {
      CFS_ASSIGN_OR_RETURN(int fd, b_->OpenAt(AT_FDCWD, dir, kDirFlags));
      dst_.root = ScopedFd(b_, fd);
      return Status::Ok();
    }
    store::VolumeOptions vo;
    vo.chunk_blocks = o_.chunk_blocks;
    CFS_RETURN_IF_ERROR(store::CreateVolumeLayout(b_, dir, key, vo));
    return OpenVolume(dir, key, /*read_only=*/false, &dst_);
  }

  Status Run() {
    CFS_ASSIGN_OR_RETURN(store::DirId sid, src_.tree->ReadDirId(src_.root.get()));
    store::DirId did{};
    if (dst_.tree) {
      CFS_ASSIGN_OR_RETURN(did, dst_.tree->ReadDirId(dst_.root.get()));
    }
    Dir src{src_.root.get(), sid, ""}, dst{dst_.root.get(), did, ""};
    std::set<std::pair<dev_t, ino_t>> seen;
    CFS_RETURN_IF_ERROR(CountBytes(src_.root.get(), &seen));
    if (o_.progress) o_.progress(0, total_);
    CFS_RETURN_IF_ERROR(CopyDir(src, dst));
    CFS_ASSIGN_OR_RETURN(struct stat root_st, b_->Fstat(src.fd));
    CFS_RETURN_IF_ERROR(FinishDir(src.fd, dst.fd, root_st));
    if (dst_.store) {
      CFS_RETURN_IF_ERROR(dst_.store->CloseClean());
      CFS_RETURN_IF_ERROR(b_->Fsync(dst_.vol.get(), false));
    }
    return Status::Ok();
  }

 private:
  Status OpenVolume(const std::string& dir, const SecretBytes* key, bool read_only, Side* s) {
    CFS_ASSIGN_OR_RETURN(int vfd, b_->OpenAt(AT_FDCWD, dir, kDirFlags));
    s->vol = ScopedFd(b_, vfd);
    CFS_ASSIGN_OR_RETURN(int tfd, b_->OpenAt(vfd, "tree", kDirFlags));
    s->root = ScopedFd(b_, tfd);
    std::unique_ptr<store::NameCodec> codec;
    if (key) {
      CFS_ASSIGN_OR_RETURN(s->keys, store::VolumeKeys::Derive(*key));
      CFS_ASSIGN_OR_RETURN(codec, store::NameCodec::CreateEncrypted(s->keys.get(), *key));
    } else {
      codec = store::NameCodec::CreatePlain();
    }
    s->tree = std::make_unique<store::Tree>(b_, std::move(codec));
    store::DataStoreOptions so;
    so.chunk_blocks = o_.chunk_blocks;
    so.read_only = read_only;
    CFS_ASSIGN_OR_RETURN(s->store, store::DataStore::Open(b_, vfd, s->keys.get(), so));
    return Status::Ok();
  }

  // Plaintext bytes of the source's files (each inode once); files that are
  // not inode files (the tree's own) do not count.
  Status CountBytes(int dirfd, std::set<std::pair<dev_t, ino_t>>* seen) {
    CFS_ASSIGN_OR_RETURN(std::vector<std::string> names, b_->ListDir(dirfd));
    for (const auto& name : names) {
      CFS_ASSIGN_OR_RETURN(struct stat st, b_->FstatAt(dirfd, name, AT_SYMLINK_NOFOLLOW));
      if (S_ISDIR(st.st_mode)) {
        CFS_ASSIGN_OR_RETURN(int fd, b_->OpenAt(dirfd, name, kDirFlags));
        ScopedFd d(b_, fd);
        CFS_RETURN_IF_ERROR(CountBytes(fd, seen));
      } else if (S_ISREG(st.st_mode) && seen->insert({st.st_dev, st.st_ino}).second) {
        CFS_ASSIGN_OR_RETURN(int fd, b_->OpenAt(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        ScopedFd f(b_, fd);
        Result<uint64_t> size = src_.store->ReadSize(fd);
        if (size.ok()) total_ += *size;
      }
    }
    return Status::Ok();
  }

  Result<std::string> DstName(const Dir& dst, const std::string& name) {
    if (!dst_.tree) return name;
    return dst_.tree->PrepareName(dst.fd, dst.id, name);
  }

  static std::string Join(const std::string& rel, const std::string& host) {
    return rel.empty() ? host : rel + "/" + host;
  }

  Status CopyDir(const Dir& src, const Dir& dst) {
    CFS_ASSIGN_OR_RETURN(std::vector<store::TreeEntry> entries, src_.tree->List(src.fd, src.id));
    CFS_RETURN_IF_ERROR(CheckAllNamesDecoded(src.fd, entries.size()));
    for (const auto& e : entries) CFS_RETURN_IF_ERROR(CopyEntry(src, dst, e));
    return b_->Fsync(dst.fd, false);
  }

  // Tree::List skips names that do not decode (tampering) with a warning;
  // a copy must not silently lose them: DataLoss.
  Status CheckAllNamesDecoded(int dirfd, size_t decoded) {
    if (!src_.tree->encrypted()) return Status::Ok();
    CFS_ASSIGN_OR_RETURN(std::vector<std::string> names, b_->ListDir(dirfd));
    size_t user = 0;
    for (const auto& n : names) {
      if (!store::IsReservedHostName(n) || store::IsLongHostName(n)) ++user;
    }
    if (user != decoded) {
      return Status(Code::kDataLoss,
                    fmt::format("{} entry name(s) of a directory do not authenticate (wrong key or tampering)",
                                user - std::min(user, decoded)), EIO);
    }
    return Status::Ok();
  }

  Status CopyEntry(const Dir& src, const Dir& dst, const store::TreeEntry& e) {
    CFS_ASSIGN_OR_RETURN(struct stat st, b_->FstatAt(src.fd, e.host_name, AT_SYMLINK_NOFOLLOW));
    if (S_ISDIR(st.st_mode)) return CopySubdir(src, dst, e, st);
    if (S_ISREG(st.st_mode)) return CopyFile(src, dst, e, st);
    if (S_ISLNK(st.st_mode)) return CopySymlink(src, dst, e, st);
    if (!S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode)) return DataLoss("tree/ holds a device node");
    CFS_ASSIGN_OR_RETURN(std::string host, DstName(dst, e.name));
    CFS_RETURN_IF_ERROR(b_->MknodAt(dst.fd, host, st.st_mode, 0));
    ++st_->others;
    return LinkAttrs(dst.fd, host, st);
  }

  Status CopySubdir(const Dir& src, const Dir& dst, const store::TreeEntry& e, const struct stat& st) {
    std::string host = e.name;
    if (dst_.tree) {
      CFS_ASSIGN_OR_RETURN(host, dst_.tree->MakeDirectory(dst.fd, dst.id, e.name, S_IFDIR | 0700, store::Owner{}));
    } else {
      CFS_RETURN_IF_ERROR(b_->MkdirAt(dst.fd, host, 0700));
    }
    CFS_ASSIGN_OR_RETURN(int sfd, b_->OpenAt(src.fd, e.host_name, kDirFlags));
    ScopedFd s(b_, sfd);
    CFS_ASSIGN_OR_RETURN(int dfd, b_->OpenAt(dst.fd, host, kDirFlags));
    ScopedFd d(b_, dfd);
    CFS_ASSIGN_OR_RETURN(store::DirId sid, src_.tree->ReadDirId(sfd));
    store::DirId did{};
    if (dst_.tree) {
      CFS_ASSIGN_OR_RETURN(did, dst_.tree->ReadDirId(dfd));
    }
    CFS_RETURN_IF_ERROR(CopyDir(Dir{sfd, sid, Join(src.rel, e.host_name)}, Dir{dfd, did, Join(dst.rel, host)}));
    ++st_->dirs;
    return FinishDir(sfd, dfd, st);
  }

  Status FinishDir(int sfd, int dfd, const struct stat& st) {
    CFS_RETURN_IF_ERROR(CopyXattrs(sfd, dfd));
    return SetAttrs(dfd, st);
  }

  Status CopySymlink(const Dir& src, const Dir& dst, const store::TreeEntry& e, const struct stat& st) {
    CFS_ASSIGN_OR_RETURN(int pfd, b_->OpenAt(src.fd, e.host_name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
    ScopedFd p(b_, pfd);
    CFS_ASSIGN_OR_RETURN(std::string target, src_.tree->ReadSymlink(pfd));
    std::string host = e.name;
    if (dst_.tree) {
      CFS_ASSIGN_OR_RETURN(host, dst_.tree->MakeSymlink(dst.fd, dst.id, e.name, target, store::Owner{}));
    } else {
      CFS_RETURN_IF_ERROR(b_->SymlinkAt(target, dst.fd, host));
    }
    ++st_->symlinks;
    return LinkAttrs(dst.fd, host, st);
  }

  // Owner (as root) and times of an entry that can't be opened (symlink, fifo).
  Status LinkAttrs(int dirfd, const std::string& host, const struct stat& st) {
    if (::geteuid() == 0) CFS_RETURN_IF_ERROR(b_->FchownAt(dirfd, host, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW));
    return b_->UtimensAt(dirfd, host, Times(st).data(), AT_SYMLINK_NOFOLLOW);
  }

  Status SetAttrs(int fd, const struct stat& st) {
    if (::geteuid() == 0) CFS_RETURN_IF_ERROR(b_->Fchown(fd, st.st_uid, st.st_gid));
    CFS_RETURN_IF_ERROR(b_->Fchmod(fd, st.st_mode & 07777));
    return b_->Futimens(fd, Times(st).data());
  }

  Status CopyXattrs(int sfd, int dfd) {
    Result<std::string> list = src_.tree->ListXattr(sfd);
    if (!list.ok() && list.status().sys_errno() == ENOTSUP) return Status::Ok();
    CFS_RETURN_IF_ERROR(list.status());
    std::vector<uint8_t> value(65536);
    for (size_t pos = 0; pos < list->size();) {
      std::string name(list->c_str() + pos);
      pos += name.size() + 1;
      CFS_ASSIGN_OR_RETURN(size_t n, src_.tree->GetXattr(sfd, name, value.data(), value.size()));
      if (dst_.tree) {
        CFS_RETURN_IF_ERROR(dst_.tree->SetXattr(dfd, name, ByteView(value.data(), n), 0));
      } else {
        CFS_RETURN_IF_ERROR(b_->Fsetxattr(dfd, name, value.data(), n, 0));
      }
    }
    return Status::Ok();
  }

  Status CopyFile(const Dir& src, const Dir& dst, const store::TreeEntry& e, const struct stat& st) {
    auto key = std::make_pair(st.st_dev, st.st_ino);
    CFS_ASSIGN_OR_RETURN(std::string host, DstName(dst, e.name));
    if (st.st_nlink > 1) {
      auto it = links_.find(key);
      if (it != links_.end()) return b_->LinkAt(dst_.root.get(), it->second, dst.fd, host, 0);
    }
    CFS_ASSIGN_OR_RETURN(int sfd, b_->OpenAt(src.fd, e.host_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    ScopedFd s(b_, sfd);
    CFS_ASSIGN_OR_RETURN(int dfd, b_->OpenAt(dst.fd, host, O_CREAT | O_EXCL | O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0600));
    ScopedFd d(b_, dfd);
    CFS_RETURN_IF_ERROR(CopyContents(sfd, dfd));
    CFS_RETURN_IF_ERROR(CopyXattrs(sfd, dfd));
    CFS_RETURN_IF_ERROR(SetAttrs(dfd, st));
    if (st.st_nlink > 1) links_.emplace(key, Join(dst.rel, host));
    ++st_->files;
    return Status::Ok();
  }

  Status CopyContents(int sfd, int dfd) {
    CFS_ASSIGN_OR_RETURN(std::shared_ptr<store::FileData> in, src_.store->OpenFile(sfd));
    std::shared_ptr<store::FileData> out;
    if (dst_.store) {
      CFS_RETURN_IF_ERROR(dst_.store->InitInodeFile(dfd));
      CFS_ASSIGN_OR_RETURN(out, dst_.store->OpenFile(dfd));
    }
    const uint64_t size = in->size();
    std::vector<uint8_t> buf(kPiece);
    for (uint64_t off = 0; off < size;) {
      CFS_ASSIGN_OR_RETURN(size_t n, in->Read(off, std::min<uint64_t>(kPiece, size - off), buf.data()));
      if (n == 0) return DataLoss("a file of the source ends before its recorded size");
      CFS_RETURN_IF_ERROR(WriteNonZeroRuns(dfd, out.get(), off, buf.data(), n));
      off += n;
      CFS_RETURN_IF_ERROR(Tick(n));
    }
    if (out) {
      CFS_RETURN_IF_ERROR(out->Truncate(size));
      return out->Sync(false);
    }
    CFS_RETURN_IF_ERROR(b_->Ftruncate(dfd, static_cast<off_t>(size)));
    return b_->Fsync(dfd, false);
  }

  // Writes the runs of 4 KiB blocks of `p` that are not all zeros: holes
  // (and zero blocks) stay holes in the copy.
  Status WriteNonZeroRuns(int dfd, store::FileData* out, uint64_t off, const uint8_t* p, size_t n) {
    constexpr size_t kBlock = 4096;
    for (size_t i = 0; i < n;) {
      size_t len = std::min(kBlock, n - i);
      if (AllZero(p + i, len)) {
        i += len;
        continue;
      }
      size_t end = i + len;
      while (end < n && !AllZero(p + end, std::min(kBlock, n - end))) end += std::min(kBlock, n - end);
      if (out) {
        CFS_RETURN_IF_ERROR(out->Write(off + i, ByteView(p + i, end - i)).status());
      } else {
        CFS_RETURN_IF_ERROR(b_->PWrite(dfd, p + i, end - i, static_cast<off_t>(off + i)));
      }
      i = end;
    }
    return Status::Ok();
  }

  Status Tick(uint64_t n) {
    done_ += n;
    st_->bytes += n;
    if (o_.progress) o_.progress(done_, std::max(total_, done_));
    if (o_.cancel && o_.cancel->load()) return Status(Code::kUnavailable, "interrupted", EINTR);
    return Status::Ok();
  }

  store::Backing* b_;
  const TranscodeOptions& o_;
  TranscodeStats* st_;
  Side src_, dst_;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;  // first copy of a multi-link file: dst host path
  uint64_t done_ = 0, total_ = 0;
};

}  // namespace

Status TranscodeVolume(store::Backing* b, const std::string& src_dir, const SecretBytes* src_key,
                       const std::string& dst_dir, const SecretBytes* dst_key, const TranscodeOptions& options,
                       TranscodeStats* stats) {
  TranscodeStats local;
  Transcoder t(b, options, stats ? stats : &local);
  CFS_RETURN_IF_ERROR(t.OpenSource(src_dir, src_key));
  CFS_RETURN_IF_ERROR(t.OpenDestination(dst_dir, dst_key));
  return t.Run();
}

}  // namespace cfs::snapshot
