// Tree implementation; see tree.h and docs/format/tree.md.
#include "store/tree.h"

#include <cstdio>  // RENAME_NOREPLACE
#include <sys/xattr.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "crypto/random.h"
#include "store/tree_fd.h"

namespace cfs::store {
namespace {

constexpr int kNoFollow = O_NOFOLLOW | O_CLOEXEC;

bool IsHousekeeping(std::string_view host_name) {
  return host_name == kDirIdFile || host_name.starts_with(kSidecarPrefix) ||
         host_name.starts_with(kTempPrefix);
}

std::string DirIdHex(const DirId& dir) { return HexEncode(ByteView(dir.data(), dir.size())); }

// The host file system has no user xattrs (ENOTSUP is EOPNOTSUPP on Linux).
bool NoUserXattrs(const Status& s) { return s.sys_errno() == ENOTSUP; }

}  // namespace

Tree::Tree(Backing* backing, std::unique_ptr<NameCodec> codec) : backing_(backing), codec_(std::move(codec)) {}
Tree::~Tree() = default;

std::string Tree::TempName() const {
  auto r = crypto::RandomArray<8>();
  return std::string(kTempPrefix) + HexEncode(ByteView(r.data(), r.size()));
}

Status Tree::WriteNewDirId(int dirfd) {
  DirId id = crypto::RandomArray<16>();
  CFS_ASSIGN_OR_RETURN(int fd, backing_->OpenAt(dirfd, std::string(kDirIdFile),
                                                O_WRONLY | O_CREAT | O_EXCL | kNoFollow, 0400));
  ScopedFd file(backing_, fd);
  CFS_RETURN_IF_ERROR(backing_->PWrite(fd, id.data(), id.size(), 0));
  CFS_RETURN_IF_ERROR(backing_->Fsync(fd, false));
  CFS_RETURN_IF_ERROR(backing_->Close(file.Release()));
  CFS_ASSIGN_OR_RETURN(int dfd, backing_->OpenAt(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ScopedFd dir(backing_, dfd);
  return backing_->Fsync(dfd, false);
}

Status Tree::WriteDirIdOfNewDirectory(int dirfd) {
  DirId id = crypto::RandomArray<16>();
  Status s = backing_->Fsetxattr(dirfd, std::string(kDirIdXattr), id.data(), id.size(), XATTR_CREATE);
  return NoUserXattrs(s) ? WriteNewDirId(dirfd) : s;
}

Result<DirId> Tree::ReadDirId(int dirfd) {
  DirId id{};
  if (!encrypted()) return id;
  uint8_t buf[sizeof(id) + 1];
  auto x = backing_->Fgetxattr(dirfd, std::string(kDirIdXattr), buf, sizeof(buf));
  if (x.ok() || x.status().sys_errno() == ERANGE) {
    if (!x.ok() || *x != sizeof(id)) return Status(Code::kDataLoss, "directory id attribute has a wrong size", EIO);
    std::memcpy(id.data(), buf, sizeof(id));
    return id;
  }
  if (x.status().sys_errno() != ENODATA && !NoUserXattrs(x.status())) return x.status();
  auto fd = backing_->OpenAt(dirfd, std::string(kDirIdFile), O_RDONLY | kNoFollow);
  if (!fd.ok()) return Status(Code::kDataLoss, "directory id unreadable: " + fd.status().message(), EIO);
  ScopedFd file(backing_, *fd);
  CFS_ASSIGN_OR_RETURN(size_t n, backing_->PRead(*fd, buf, sizeof(buf), 0));
  if (n != sizeof(id)) return Status(Code::kDataLoss, "directory id file has a wrong size", EIO);
  std::memcpy(id.data(), buf, sizeof(id));
  return id;
}

Result<std::string> Tree::HostName(const DirId& dir, std::string_view name) {
  CFS_ASSIGN_OR_RETURN(StoredName s, codec_->EncodeName(dir, name));
  return std::move(s.host_name);
}

Result<std::string> Tree::PrepareName(int dirfd, const DirId& dir, std::string_view name) {
  CFS_ASSIGN_OR_RETURN(StoredName s, codec_->EncodeName(dir, name));
  if (!s.long_name.empty()) CFS_RETURN_IF_ERROR(WriteSidecar(dirfd, s.host_name, s.long_name));
  return std::move(s.host_name);
}

Status Tree::WriteSidecar(int dirfd, const std::string& host_name, const std::string& contents) {
  // The contents are a function of the name, so rewriting an existing
  // sidecar (a second link with the same name) changes nothing.
  std::string side = SidecarName(host_name);
  CFS_ASSIGN_OR_RETURN(int fd, backing_->OpenAt(dirfd, side, O_WRONLY | O_CREAT | O_TRUNC | kNoFollow, 0400));
  ScopedFd file(backing_, fd);
  CFS_RETURN_IF_ERROR(backing_->PWrite(fd, contents.data(), contents.size(), 0));
  CFS_RETURN_IF_ERROR(backing_->Fsync(fd, false));
  return backing_->Close(file.Release());
}

Result<std::string> Tree::ReadSidecar(int dirfd, const std::string& long_host_name) {
  CFS_ASSIGN_OR_RETURN(int fd, backing_->OpenAt(dirfd, SidecarName(long_host_name), O_RDONLY | kNoFollow));
  ScopedFd file(backing_, fd);
  std::string buf(4 * kMaxHostName, '\0');
  CFS_ASSIGN_OR_RETURN(size_t n, backing_->PRead(fd, buf.data(), buf.size(), 0));
  buf.resize(n);
  if (!NameCodec::SidecarMatches(long_host_name, buf)) return DataLoss("long-name sidecar does not match");
  return buf;
}

void Tree::ReleaseName(int dirfd, const std::string& host_name) {
  if (!encrypted() || !IsLongHostName(host_name)) return;  // plain volumes store names as they are
  // Another link may use the same long name in this directory only if it
  // is the same name, i.e. the entry still exists: keep the sidecar then.
  if (backing_->FstatAt(dirfd, host_name, AT_SYMLINK_NOFOLLOW).ok()) return;
  Status s = backing_->UnlinkAt(dirfd, SidecarName(host_name), 0);
  if (!s.ok() && s.sys_errno() != ENOENT) log::Warn("tree: could not remove a long-name sidecar: {}", s.ToString());
}

Result<std::vector<TreeEntry>> Tree::List(int dirfd, const DirId& dir) {
  CFS_ASSIGN_OR_RETURN(std::vector<std::string> names, backing_->ListDir(dirfd));
  std::vector<TreeEntry> out;
  out.reserve(names.size());
  for (std::string& host : names) {
    if (!encrypted()) {
      out.push_back({host, host});
      continue;
    }
    if (IsReservedHostName(host) && !IsLongHostName(host)) continue;
    Result<std::string> name = Status(Code::kDataLoss, "");
    if (IsLongHostName(host)) {
      auto side = ReadSidecar(dirfd, host);
      name = side.ok() ? codec_->DecodeName(dir, *side) : Result<std::string>(side.status());
    } else {
      name = codec_->DecodeName(dir, host);
    }
    if (!name.ok()) {
      if (name.status().code() == Code::kFailedPrecondition) return name.status();  // keys wiped
      log::Warn("tree: skipping an entry of directory {} whose stored name does not decode ({})", DirIdHex(dir),
                CodeName(name.status().code()));
      continue;
    }
    out.push_back({std::move(*name), std::move(host)});
  }
  return out;
}

Result<std::string> Tree::MakeDirectory(int parent_fd, const DirId& parent, std::string_view name, mode_t mode,
                                        const Owner& owner) {
  CFS_ASSIGN_OR_RETURN(std::string host, PrepareName(parent_fd, parent, name));
  std::string tmp = encrypted() ? TempName() : host;
  CFS_RETURN_IF_ERROR(backing_->MkdirAt(parent_fd, tmp, 0700));
  auto finish = [&]() -> Status {
    CFS_ASSIGN_OR_RETURN(int dfd, backing_->OpenAt(parent_fd, tmp, O_RDONLY | O_DIRECTORY | kNoFollow));
    ScopedFd dir(backing_, dfd);
    if (encrypted()) CFS_RETURN_IF_ERROR(WriteDirIdOfNewDirectory(dfd));
    if (owner.set) CFS_RETURN_IF_ERROR(backing_->Fchown(dfd, owner.uid, owner.gid));
    CFS_RETURN_IF_ERROR(backing_->Fchmod(dfd, mode & 07777));
    if (encrypted()) CFS_RETURN_IF_ERROR(backing_->RenameAt(parent_fd, tmp, parent_fd, host, RENAME_NOREPLACE));
    return Status::Ok();
  };
  Status s = finish();
  if (!s.ok()) {
    if (encrypted()) static_cast<void>(DestroyStashed(parent_fd, tmp));
    else static_cast<void>(backing_->UnlinkAt(parent_fd, tmp, AT_REMOVEDIR));
    return s;
  }
  return host;
}

Result<bool> Tree::HoldsUserEntries(int dirfd) {
  CFS_ASSIGN_OR_RETURN(std::vector<std::string> names, backing_->ListDir(dirfd));
  for (const std::string& n : names) {
    if (!IsHousekeeping(n)) return true;
  }
  return false;
}

Status Tree::RemoveReserved(int dirfd) {
  CFS_ASSIGN_OR_RETURN(std::vector<std::string> names, backing_->ListDir(dirfd));
  for (const std::string& n : names) {
    if (n.starts_with(kTempPrefix)) {
      Status s = DestroyStashed(dirfd, n);
      if (!s.ok() && s.sys_errno() != ENOTDIR) return s;
      if (s.ok()) continue;
    } else if (!IsHousekeeping(n)) {
      return Status(Code::kFailedPrecondition, "directory not empty", ENOTEMPTY);
    }
    Status s = backing_->UnlinkAt(dirfd, n, 0);
    if (!s.ok() && s.sys_errno() != ENOENT) return s;
  }
  return Status::Ok();
}

Result<std::string> Tree::StashEmptyDirectory(int parent_fd, const std::string& host_name) {
  if (!encrypted()) return std::string();
  CFS_ASSIGN_OR_RETURN(int dfd, backing_->OpenAt(parent_fd, host_name, O_RDONLY | O_DIRECTORY | kNoFollow));
  ScopedFd dir(backing_, dfd);
  CFS_ASSIGN_OR_RETURN(bool busy, HoldsUserEntries(dfd));
  if (busy) return Status(Code::kFailedPrecondition, "directory not empty", ENOTEMPTY);
  std::string tmp = TempName();
  CFS_RETURN_IF_ERROR(backing_->RenameAt(parent_fd, host_name, parent_fd, tmp, RENAME_NOREPLACE));
  return tmp;
}

Status Tree::UnstashDirectory(int parent_fd, const std::string& temp_name, const std::string& host_name) {
  if (temp_name.empty()) return Status::Ok();
  return backing_->RenameAt(parent_fd, temp_name, parent_fd, host_name, RENAME_NOREPLACE);
}

Status Tree::DestroyStashed(int parent_fd, const std::string& temp_name) {
  if (temp_name.empty()) return Status::Ok();
  {
    CFS_ASSIGN_OR_RETURN(int dfd, backing_->OpenAt(parent_fd, temp_name, O_RDONLY | O_DIRECTORY | kNoFollow));
    ScopedFd dir(backing_, dfd);
    CFS_RETURN_IF_ERROR(RemoveReserved(dfd));
  }
  return backing_->UnlinkAt(parent_fd, temp_name, AT_REMOVEDIR);
}

Status Tree::RemoveDirectory(int parent_fd, const std::string& host_name) {
  if (!encrypted()) return backing_->UnlinkAt(parent_fd, host_name, AT_REMOVEDIR);
  CFS_ASSIGN_OR_RETURN(std::string tmp, StashEmptyDirectory(parent_fd, host_name));
  return DestroyStashed(parent_fd, tmp);
}

Result<std::string> Tree::MakeSymlink(int parent_fd, const DirId& parent, std::string_view name,
                                      std::string_view target, const Owner& owner) {
  CFS_ASSIGN_OR_RETURN(std::string stored, codec_->EncodeSymlink(target));
  CFS_ASSIGN_OR_RETURN(std::string host, PrepareName(parent_fd, parent, name));
  CFS_RETURN_IF_ERROR(backing_->SymlinkAt(stored, parent_fd, host));
  if (owner.set) {
    Status s = backing_->FchownAt(parent_fd, host, owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW);
    if (!s.ok()) {
      static_cast<void>(backing_->UnlinkAt(parent_fd, host, 0));
      return s;
    }
  }
  return host;
}

Result<std::string> Tree::ReadSymlink(int fd) {
  CFS_ASSIGN_OR_RETURN(std::string stored, backing_->ReadlinkAt(fd, ""));
  return codec_->DecodeSymlink(stored);
}

Result<size_t> Tree::GetXattr(int fd, std::string_view name, void* value, size_t size) {
  CFS_ASSIGN_OR_RETURN(std::string host, codec_->EncodeXattrName(name));
  if (!encrypted()) return backing_->Fgetxattr(fd, host, value, size);
  Bytes stored;
  for (int attempt = 0;; ++attempt) {
    CFS_ASSIGN_OR_RETURN(size_t need, backing_->Fgetxattr(fd, host, nullptr, 0));
    stored.resize(need);
    auto got = backing_->Fgetxattr(fd, host, stored.data(), stored.size());
    if (got.ok()) {
      stored.resize(*got);
      break;
    }
    if (got.status().sys_errno() != ERANGE || attempt > 3) return got.status();
  }
  auto plain = codec_->OpenXattrValue(host, stored);
  if (!plain.ok()) {
    log::Warn("tree: an extended attribute does not authenticate");
    return Status(Code::kDataLoss, "xattr value does not authenticate", EIO);
  }
  if (size == 0) return plain->size();
  if (size < plain->size()) return Status(Code::kInvalidArgument, "xattr buffer too small", ERANGE);
  std::memcpy(value, plain->data(), plain->size());
  return plain->size();
}

Status Tree::SetXattr(int fd, std::string_view name, ByteView value, int flags) {
  CFS_ASSIGN_OR_RETURN(std::string host, codec_->EncodeXattrName(name));
  CFS_ASSIGN_OR_RETURN(Bytes stored, codec_->SealXattrValue(host, value));
  return backing_->Fsetxattr(fd, host, stored.data(), stored.size(), flags);
}

Result<std::string> Tree::ListXattr(int fd) {
  std::string list;
  for (int attempt = 0;; ++attempt) {
    CFS_ASSIGN_OR_RETURN(size_t need, backing_->Flistxattr(fd, nullptr, 0));
    list.resize(need);
    auto got = backing_->Flistxattr(fd, list.data(), list.size());
    if (got.ok()) {
      list.resize(*got);
      break;
    }
    if (got.status().sys_errno() != ERANGE || attempt > 3) return got.status();
  }
  std::string out;
  for (size_t pos = 0; pos < list.size();) {
    size_t end = list.find('\0', pos);
    if (end == std::string::npos) end = list.size();
    auto name = codec_->DecodeXattrName(std::string_view(list).substr(pos, end - pos));
    pos = end + 1;
    if (name.ok()) {
      out += *name;
      out += '\0';
    } else if (name.status().code() == Code::kFailedPrecondition) {
      return name.status();
    } else if (name.status().code() != Code::kNotFound) {
      log::Warn("tree: skipping an extended attribute whose stored name does not decode");
    }
  }
  return out;
}

Status Tree::RemoveXattr(int fd, std::string_view name) {
  CFS_ASSIGN_OR_RETURN(std::string host, codec_->EncodeXattrName(name));
  return backing_->Fremovexattr(fd, host);
}

}  // namespace cfs::store
