// VolumeFs: directory handles (opendir, readdir[plus], fsyncdir).
// A handle lists the directory (decoded names) when read from offset 0 and
// serves later offsets from that snapshot, like a host getdents stream.
#include <cerrno>

#include "common/log.h"
#include "fs/volume_fs.h"

namespace cfs::fs {
namespace {

struct DirEntry {
  std::string name;
  std::string host;  // empty for "." and ".."
  struct stat st;    // st_ino and the type bits
};

struct DirHandle {
  std::shared_ptr<Inode> inode;
  store::ScopedFd fd;  // O_RDONLY, for fsyncdir
  std::mutex mu;       // guards entries
  std::vector<DirEntry> entries;
};

DirHandle& DirOf(fuse_file_info* fi) { return *reinterpret_cast<DirHandle*>(fi->fh); }

}  // namespace

Result<Reply> VolumeFs::Opendir(fuse_ino_t ino, fuse_file_info* fi) {
  Inode& inode = InodeOf(ino);
  CFS_ASSIGN_OR_RETURN(int fd, backing_->OpenAt(inode.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  auto h = std::make_unique<DirHandle>();
  h->inode = Shared(inode);
  h->fd = store::ScopedFd(backing_, fd);
  fi->fh = reinterpret_cast<uint64_t>(h.release());
  fi->cache_readdir = 1;  // cipherfs is the only writer; the kernel drops it on changes it makes
  fi->keep_cache = 1;
  if (config_.read_only) fi->cache_readdir = fi->keep_cache = 0;  // a writer may run beside (replicas)
  return Reply(ReplyOpen{*fi});
}

Result<Reply> VolumeFs::Readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi,
                                bool plus) {
  DirHandle& h = DirOf(fi);
  std::lock_guard<std::mutex> lock(h.mu);
  if (off == 0 || h.entries.empty()) {
    Inode& dir = InodeOf(ino);
    CFS_ASSIGN_OR_RETURN(store::DirId id, DirIdOf(dir));
    CFS_ASSIGN_OR_RETURN(std::vector<store::TreeEntry> names, tree_->List(h.fd.get(), id));
    h.entries.clear();
    for (const char* dot : {".", ".."}) {
      auto st = backing_->FstatAt(h.fd.get(), dot, AT_SYMLINK_NOFOLLOW);
      if (st.ok()) h.entries.push_back({dot, "", *st});
    }
    for (store::TreeEntry& e : names) {
      auto st = backing_->FstatAt(h.fd.get(), e.host_name, AT_SYMLINK_NOFOLLOW);
      if (!st.ok()) continue;  // gone since the listing
      h.entries.push_back({std::move(e.name), std::move(e.host_name), *st});
    }
  }
  std::string buf(size, '\0');
  size_t used = 0;
  for (size_t i = size_t(off); i < h.entries.size(); ++i) {
    const DirEntry& e = h.entries[i];
    size_t n;
    if (!plus) {
      n = fuse_add_direntry(req, buf.data() + used, size - used, e.name.c_str(), &e.st, off_t(i + 1));
      if (n > size - used) break;
    } else if (e.host.empty()) {
      fuse_entry_param p{};
      p.attr = e.st;  // ino 0: "." and ".." are not looked up
      n = fuse_add_direntry_plus(req, buf.data() + used, size - used, e.name.c_str(), &p, off_t(i + 1));
      if (n > size - used) break;
    } else {
      auto entry = EntryOf(h.fd.get(), e.host);
      if (!entry.ok()) continue;
      n = fuse_add_direntry_plus(req, buf.data() + used, size - used, e.name.c_str(), &entry->e, off_t(i + 1));
      if (n > size - used) {
        table_.Forget(&InodeOf(entry->e.ino), 1);  // not sent: the kernel will not count it
        break;
      }
    }
    used += n;
  }
  buf.resize(used);
  return Reply(ReplyBytes{std::move(buf)});
}

Result<Reply> VolumeFs::Releasedir(fuse_ino_t, fuse_file_info* fi) {
  delete &DirOf(fi);
  return Reply(ReplyOk{});
}

Result<Reply> VolumeFs::Fsyncdir(fuse_ino_t, int, fuse_file_info* fi) {
  DirHandle& h = DirOf(fi);
  CFS_RETURN_IF_ERROR(backing_->Fsync(h.fd.get(), false));
  CFS_RETURN_IF_ERROR(SyncEntry(*h.inode));
  return Reply(ReplyOk{});
}

}  // namespace cfs::fs
