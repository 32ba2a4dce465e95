#include "snapshot/ship_tree.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <array>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "store/tree_fd.h"

namespace cfs::snapshot {
namespace {

constexpr char kMagic[] = "CFSTREE1";
constexpr size_t kMaxDepth = 256;
constexpr uint32_t kMaxInodeFile = 1 << 20;  // inode files and long-name files are far smaller

struct Attrs {
  uint32_t mode = 0, uid = 0, gid = 0;
  std::array<struct timespec, 2> times{};
  std::vector<std::pair<std::string, Bytes>> xattrs;
};

Attrs AttrsOf(const struct stat& st) {
  Attrs a;
  a.mode = st.st_mode;
  a.uid = st.st_uid;
  a.gid = st.st_gid;
  a.times = {st.st_atim, st.st_mtim};
  return a;
}

Result<store::ScopedFd> OpenDir(store::Backing* b, int dirfd, const std::string& name) {
  CFS_ASSIGN_OR_RETURN(int fd, b->OpenAt(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  return store::ScopedFd(b, fd);
}

class Packer {
 public:
  explicit Packer(store::Backing* b) : b_(b) { Append(kMagic, 8); }

  Status Dir(int fd, const std::string& name, const struct stat& st) {
    Attrs a = AttrsOf(st);
    CFS_RETURN_IF_ERROR(Xattrs(fd, &a));
    Head('D', name, a, true);
    CFS_ASSIGN_OR_RETURN(std::vector<std::string> names, b_->ListDir(fd));
    for (const auto& n : names) {
      CFS_ASSIGN_OR_RETURN(struct stat cst, b_->FstatAt(fd, n, AT_SYMLINK_NOFOLLOW));
      if (S_ISDIR(cst.st_mode)) {
        CFS_ASSIGN_OR_RETURN(store::ScopedFd d, OpenDir(b_, fd, n));
        CFS_RETURN_IF_ERROR(Dir(d.get(), n, cst));
      } else if (S_ISREG(cst.st_mode)) {
        CFS_RETURN_IF_ERROR(File(fd, n, cst));
      } else if (S_ISLNK(cst.st_mode)) {
        CFS_ASSIGN_OR_RETURN(std::string target, b_->ReadlinkAt(fd, n));
        Head('S', n, AttrsOf(cst), false);
        Str16(target);
      } else if (S_ISFIFO(cst.st_mode) || S_ISSOCK(cst.st_mode)) {
        Head(S_ISFIFO(cst.st_mode) ? 'P' : 'K', n, AttrsOf(cst), false);
      } else {
        return DataLoss("tree/ holds a device node; a volume never does");
      }
    }
    Append("U", 1);
    return Status::Ok();
  }

  Bytes Finish() {
    Append("E", 1);
    return std::move(out_);
  }

 private:
  Status File(int dir, const std::string& name, const struct stat& st) {
    auto key = std::make_pair(st.st_dev, st.st_ino);
    if (st.st_nlink > 1) {
      auto it = links_.find(key);
      if (it != links_.end()) {
        Append("H", 1);
        Str16(name);
        U32(it->second);
        return Status::Ok();
      }
    }
    if (st.st_size > kMaxInodeFile) return DataLoss(fmt::format("tree/ file of {} bytes: not a volume's", st.st_size));
    CFS_ASSIGN_OR_RETURN(int fd, b_->OpenAt(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    store::ScopedFd in(b_, fd);
    Attrs a = AttrsOf(st);
    CFS_RETURN_IF_ERROR(Xattrs(fd, &a));
    Bytes data(static_cast<size_t>(st.st_size));
    CFS_ASSIGN_OR_RETURN(size_t got, b_->PRead(fd, data.data(), data.size(), 0));
    data.resize(got);
    Head('F', name, a, true);
    U32(static_cast<uint32_t>(data.size()));
    Append(data.data(), data.size());
    if (st.st_nlink > 1) links_.emplace(key, files_);
    ++files_;
    return Status::Ok();
  }

  Status Xattrs(int fd, Attrs* a) {
    std::vector<char> list(65536);
    Result<size_t> n = b_->Flistxattr(fd, list.data(), list.size());
    if (!n.ok()) return n.status().sys_errno() == ENOTSUP ? Status::Ok() : n.status();
    Bytes value(65536);
    for (size_t i = 0; i < *n;) {
      std::string name(&list[i]);
      i += name.size() + 1;
      CFS_ASSIGN_OR_RETURN(size_t len, b_->Fgetxattr(fd, name, value.data(), value.size()));
      a->xattrs.emplace_back(name, Bytes(value.begin(), value.begin() + static_cast<ptrdiff_t>(len)));
    }
    return Status::Ok();
  }

  void Head(char kind, const std::string& name, const Attrs& a, bool with_xattrs) {
    Append(&kind, 1);
    Str16(name);
    U32(a.mode);
    U32(a.uid);
    U32(a.gid);
    for (const auto& t : a.times) {
      U64(static_cast<uint64_t>(t.tv_sec));
      U32(static_cast<uint32_t>(t.tv_nsec));
    }
    if (!with_xattrs) return;
    U16(static_cast<uint16_t>(a.xattrs.size()));
    for (const auto& [n, v] : a.xattrs) {
      Str16(n);
      U32(static_cast<uint32_t>(v.size()));
      Append(v.data(), v.size());
    }
  }
  // Appends n bytes (resize + memcpy: GCC 12 misreads vector::insert of
  // small arrays as an overflow).
  void Append(const void* p, size_t n) {
    if (n == 0) return;
    size_t old = out_.size();
    out_.resize(old + n);
    std::memcpy(out_.data() + old, p, n);
  }
  void U16(uint16_t v) {
    uint8_t b[2] = {uint8_t(v), uint8_t(v >> 8)};
    Append(b, 2);
  }
  void U32(uint32_t v) {
    uint8_t b[4];
    PutU32(b, v);
    Append(b, 4);
  }
  void U64(uint64_t v) {
    uint8_t b[8];
    PutU64(b, v);
    Append(b, 8);
  }
  void Str16(const std::string& s) {
    U16(static_cast<uint16_t>(s.size()));
    Append(s.data(), s.size());
  }

  store::Backing* b_;
  Bytes out_;
  uint32_t files_ = 0;
  std::map<std::pair<dev_t, ino_t>, uint32_t> links_;
};

// Reads the packed bytes; every read is bounds-checked.
class Reader {
 public:
  explicit Reader(ByteView in) : in_(in) {}
  bool ok() const { return ok_; }
  uint8_t U8() { return Need(1) ? in_[pos_++] : 0; }
  uint16_t U16() {
    if (!Need(2)) return 0;
    uint16_t v = static_cast<uint16_t>(in_[pos_] | (in_[pos_ + 1] << 8));
    pos_ += 2;
    return v;
  }
  uint32_t U32() { return Need(4) ? GetU32(Take(4)) : 0; }
  uint64_t U64() { return Need(8) ? GetU64(Take(8)) : 0; }
  std::string Str(size_t n) {
    if (!Need(n)) return "";
    const uint8_t* p = Take(n);
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  Bytes Blob(size_t n) {
    if (!Need(n)) return {};
    const uint8_t* p = Take(n);
    return Bytes(p, p + n);
  }

 private:
  bool Need(size_t n) {
    if (!ok_ || in_.size() - pos_ < n) ok_ = false;
    return ok_;
  }
  const uint8_t* Take(size_t n) {
    const uint8_t* p = in_.data() + pos_;
    pos_ += n;
    return p;
  }
  ByteView in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

bool ValidName(const std::string& n) {
  return !n.empty() && n.size() <= 255 && n != "." && n != ".." && n.find('/') == std::string::npos &&
         n.find('\0') == std::string::npos;
}

class Unpacker {
 public:
  Unpacker(store::Backing* b, ByteView in) : b_(b), r_(in) {}

  Status Run(int volume_fd) {
    if (r_.Str(8) != std::string(kMagic, 8) || r_.U8() != 'D') return Bad("no tree header");
    std::string root_name = r_.Str(r_.U16());
    Attrs root = ReadAttrs(true);
    if (!r_.ok() || !root_name.empty()) return Bad("bad tree root");
    CFS_RETURN_IF_ERROR(b_->MkdirAt(volume_fd, "tree", 0700));
    CFS_ASSIGN_OR_RETURN(store::ScopedFd t, OpenDir(b_, volume_fd, "tree"));
    root_fd_ = t.get();
    stack_.push_back({std::move(t), std::move(root), ""});
    while (!stack_.empty()) CFS_RETURN_IF_ERROR(Next());
    if (r_.U8() != 'E' || !r_.ok()) return Bad("no end mark");
    return Status::Ok();
  }

 private:
  struct Open {
    store::ScopedFd fd;
    Attrs attrs;
    std::string rel;
  };

  static Status Bad(const std::string& what) { return DataLoss("packed tree from the shipment peer: " + what); }

  Attrs ReadAttrs(bool with_xattrs) {
    Attrs a;
    a.mode = r_.U32();
    a.uid = r_.U32();
    a.gid = r_.U32();
    for (auto& t : a.times) {
      t.tv_sec = static_cast<time_t>(r_.U64());
      t.tv_nsec = r_.U32() % 1000000000;
    }
    if (!with_xattrs) return a;
    for (uint16_t n = r_.U16(); n > 0 && r_.ok(); --n) {
      std::string name = r_.Str(r_.U16());
      Bytes v = r_.Blob(r_.U32());
      a.xattrs.emplace_back(std::move(name), std::move(v));
    }
    return a;
  }

  Status Apply(int fd, const Attrs& a) {
    CFS_ASSIGN_OR_RETURN(struct stat now, b_->Fstat(fd));
    if (now.st_uid != a.uid || now.st_gid != a.gid) CFS_RETURN_IF_ERROR(b_->Fchown(fd, a.uid, a.gid));
    CFS_RETURN_IF_ERROR(b_->Fchmod(fd, a.mode & 07777));
    for (const auto& [n, v] : a.xattrs) CFS_RETURN_IF_ERROR(b_->Fsetxattr(fd, n, v.data(), v.size(), 0));
    return b_->Futimens(fd, a.times.data());
  }

  Status ApplyAt(int dir, const std::string& name, const Attrs& a) {
    CFS_ASSIGN_OR_RETURN(struct stat now, b_->FstatAt(dir, name, AT_SYMLINK_NOFOLLOW));
    if (now.st_uid != a.uid || now.st_gid != a.gid) {
      CFS_RETURN_IF_ERROR(b_->FchownAt(dir, name, a.uid, a.gid, AT_SYMLINK_NOFOLLOW));
    }
    return b_->UtimensAt(dir, name, a.times.data(), AT_SYMLINK_NOFOLLOW);
  }

  Status Next() {
    uint8_t kind = r_.U8();
    if (!r_.ok()) return Bad("truncated");
    Open& cur = stack_.back();
    if (kind == 'U') {
      CFS_RETURN_IF_ERROR(Apply(cur.fd.get(), cur.attrs));
      stack_.pop_back();
      return Status::Ok();
    }
    std::string name = r_.Str(r_.U16());
    if (!r_.ok() || !ValidName(name)) return Bad("bad entry name");
    int dir = cur.fd.get();
    std::string rel = cur.rel.empty() ? name : cur.rel + "/" + name;
    if (kind == 'H') {
      uint32_t index = r_.U32();
      if (!r_.ok() || index >= files_.size()) return Bad("hard link to an unknown file");
      return b_->LinkAt(root_fd_, files_[index], dir, name, 0);
    }
    Attrs a = ReadAttrs(kind == 'D' || kind == 'F');
    if (!r_.ok()) return Bad("truncated entry");
    switch (kind) {
      case 'D': {
        if (!S_ISDIR(a.mode) || stack_.size() >= kMaxDepth) return Bad("bad directory");
        CFS_RETURN_IF_ERROR(b_->MkdirAt(dir, name, 0700));
        CFS_ASSIGN_OR_RETURN(store::ScopedFd d, OpenDir(b_, dir, name));
        stack_.push_back({std::move(d), std::move(a), rel});
        return Status::Ok();
      }
      case 'F': return File(dir, name, rel, a);
      case 'S': {
        std::string target = r_.Str(r_.U16());
        if (!r_.ok() || target.empty() || target.find('\0') != std::string::npos) return Bad("bad symlink");
        CFS_RETURN_IF_ERROR(b_->SymlinkAt(target, dir, name));
        return ApplyAt(dir, name, a);
      }
      case 'P':
      case 'K': {
        mode_t type = kind == 'P' ? S_IFIFO : S_IFSOCK;
        CFS_RETURN_IF_ERROR(b_->MknodAt(dir, name, type | (a.mode & 07777), 0));
        return ApplyAt(dir, name, a);
      }
      default: return Bad(fmt::format("unknown record kind {}", kind));
    }
  }

  Status File(int dir, const std::string& name, const std::string& rel, const Attrs& a) {
    uint32_t size = r_.U32();
    if (!r_.ok() || size > kMaxInodeFile || !S_ISREG(a.mode)) return Bad("bad file");
    Bytes data = r_.Blob(size);
    if (!r_.ok()) return Bad("truncated file");
    CFS_ASSIGN_OR_RETURN(int fd, b_->OpenAt(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    store::ScopedFd out(b_, fd);
    if (!data.empty()) CFS_RETURN_IF_ERROR(b_->PWrite(fd, data.data(), data.size(), 0));
    CFS_RETURN_IF_ERROR(Apply(fd, a));
    files_.push_back(rel);
    return Status::Ok();
  }

  store::Backing* b_;
  Reader r_;
  int root_fd_ = -1;
  std::vector<Open> stack_;
  std::vector<std::string> files_;  // rel path of each 'F', for 'H'
};

}  // namespace

Result<Bytes> PackTree(store::Backing* b, const std::string& volume_dir) {
  CFS_ASSIGN_OR_RETURN(store::ScopedFd v, OpenDir(b, AT_FDCWD, volume_dir));
  CFS_ASSIGN_OR_RETURN(struct stat st, b->FstatAt(v.get(), "tree", AT_SYMLINK_NOFOLLOW));
  CFS_ASSIGN_OR_RETURN(store::ScopedFd t, OpenDir(b, v.get(), "tree"));
  Packer p(b);
  CFS_RETURN_IF_ERROR(p.Dir(t.get(), "", st));
  return p.Finish();
}

Status UnpackTree(store::Backing* b, ByteView packed, const std::string& dst_volume_dir) {
  CFS_ASSIGN_OR_RETURN(store::ScopedFd v, OpenDir(b, AT_FDCWD, dst_volume_dir));
  Unpacker u(b, packed);
  return u.Run(v.get());
}

}  // namespace cfs::snapshot
