#include "store/chunk_cow.h"

#include <unistd.h>

#include <vector>

namespace cfs::store {
namespace {

constexpr size_t kCopyPiece = 1 << 20;

// Copies the data ranges of `src` (size `size`) into `dst`.
Status CopyData(Backing* backing, int src, int dst, off_t size) {
  std::vector<uint8_t> buf(kCopyPiece);
  off_t pos = 0;
  while (pos < size) {
    auto data = backing->Lseek(src, pos, SEEK_DATA);
    if (!data.ok()) {
      if (data.status().sys_errno() == ENXIO) break;  // only a hole is left
      return data.status();
    }
    CFS_ASSIGN_OR_RETURN(off_t hole, backing->Lseek(src, *data, SEEK_HOLE));
    for (off_t off = *data; off < hole;) {
      size_t want = size_t(std::min<off_t>(hole - off, off_t(kCopyPiece)));
      CFS_ASSIGN_OR_RETURN(size_t got, backing->PRead(src, buf.data(), want, off));
      if (got == 0) break;
      CFS_RETURN_IF_ERROR(backing->PWrite(dst, buf.data(), got, off));
      off += off_t(got);
    }
    pos = hole;
  }
  return backing->Ftruncate(dst, size);
}

}  // namespace

Status BreakChunkCow(Backing* backing, int dirfd, const std::string& name, int src_fd) {
  const std::string tmp = name + ".cow";
  Status gone = backing->UnlinkAt(dirfd, tmp, 0);  // a stale copy of a killed daemon
  if (!gone.ok() && gone.sys_errno() != ENOENT) return gone;
  CFS_ASSIGN_OR_RETURN(struct stat st, backing->Fstat(src_fd));
  CFS_ASSIGN_OR_RETURN(int dst, backing->OpenAt(dirfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  Status s = CopyData(backing, src_fd, dst, st.st_size);
  if (s.ok()) s = backing->Fsync(dst, true);
  Status c = backing->Close(dst);
  if (s.ok()) s = c;
  if (s.ok()) s = backing->RenameAt(dirfd, tmp, dirfd, name, 0);
  if (!s.ok()) {
    (void)backing->UnlinkAt(dirfd, tmp, 0);
    return s.WithContext("copy-on-write break of chunk " + name);
  }
  return backing->Fsync(dirfd, false);
}

}  // namespace cfs::store
