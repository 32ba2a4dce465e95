#include "store/chunk_cow.h"

#include <fcntl.h>
#include <unistd.h>

#include <vector>

#include "common/result.h"

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

bool IsChunkName(const std::string& name) {
  if (name.empty() || name.size() > 20) return false;
  for (char c : name) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool Vanished(const Status& s) { return s.sys_errno() == ENOENT; }

// Calls `fn(file_hex, name)` for every entry of every chunk directory
// `<hh>/<file_hex>/` of `objects`; directories vanishing meanwhile are
// skipped. Stops at the first error of `fn`.
template <typename Fn>
Status WalkChunkDirs(Backing* backing, int objects, Fn fn) {
  CFS_ASSIGN_OR_RETURN(std::vector<std::string> shards, backing->ListDir(objects));
  for (const std::string& shard : shards) {
    auto files = backing->OpenAt(objects, shard, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (!files.ok() && Vanished(files.status())) continue;
    if (!files.ok()) return files.status();
    auto names = backing->ListDir(*files);
    (void)backing->Close(*files);
    if (!names.ok()) return names.status();
    for (const std::string& file : *names) {
      if (file.size() < 2 || file.compare(0, 2, shard) != 0) continue;  // not a chunk directory
      auto dir = backing->OpenAt(objects, shard + "/" + file, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (!dir.ok() && Vanished(dir.status())) continue;  // deleted: its chunks were preserved first
      if (!dir.ok()) return dir.status();
      auto chunks = backing->ListDir(*dir);
      (void)backing->Close(*dir);
      if (!chunks.ok() && Vanished(chunks.status())) continue;
      if (!chunks.ok()) return chunks.status();
      for (const std::string& chunk : *chunks) CFS_RETURN_IF_ERROR(fn(file, chunk));
    }
  }
  return Status::Ok();
}

}  // namespace

Status BreakChunkCow(Backing* backing, int dirfd, const std::string& name, int src_fd, bool sync_dir) {
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
  return sync_dir ? backing->Fsync(dirfd, false) : Status::Ok();
}

void SnapshotLinks::NoteFailure(const Status& s) {
  if (failure_.ok()) failure_ = s.WithContext("linking chunks into a snapshot");
}

Status SnapshotLinks::LinkLocked(const std::string& file_hex, const std::string& chunk) {
  const std::string dir = file_hex.substr(0, 2) + "/" + file_hex;
  if (!dirs_.contains(dir)) {
    for (const std::string& d : {file_hex.substr(0, 2), dir}) {
      Status m = backing_->MkdirAt(snap_, d, 0700);
      if (!m.ok() && m.sys_errno() != EEXIST) return m;
    }
    dirs_.insert(dir);
  }
  const std::string path = dir + "/" + chunk;
  if (refresh_) {  // the snapshot's chunk stays if it is still the live one
    CFS_ASSIGN_OR_RETURN(bool linked, LinkOver(backing_, live_, snap_, path));
    if (linked) ++linked_;
    return Status::Ok();
  }
  Status s = backing_->LinkAt(live_, path, snap_, path, 0);
  if (s.ok()) ++linked_;
  return s.sys_errno() == EEXIST ? Status::Ok() : s;  // the linker was first
}

Result<bool> LinkOver(Backing* backing, int src_dirfd, int dst_dirfd, const std::string& path) {
  CFS_ASSIGN_OR_RETURN(struct stat want, backing->FstatAt(src_dirfd, path, AT_SYMLINK_NOFOLLOW));
  Result<struct stat> have = backing->FstatAt(dst_dirfd, path, AT_SYMLINK_NOFOLLOW);
  if (!have.ok() && !Vanished(have.status())) return have.status();
  if (!have.ok()) {
    CFS_RETURN_IF_ERROR(backing->LinkAt(src_dirfd, path, dst_dirfd, path, 0));
    return true;
  }
  if (have->st_ino == want.st_ino && have->st_dev == want.st_dev) return false;
  const std::string tmp = path + ".new";
  Status gone = backing->UnlinkAt(dst_dirfd, tmp, 0);  // a leftover of an interrupted relink
  if (!gone.ok() && !Vanished(gone)) return gone;
  CFS_RETURN_IF_ERROR(backing->LinkAt(src_dirfd, path, dst_dirfd, tmp, 0));
  CFS_RETURN_IF_ERROR(backing->RenameAt(dst_dirfd, tmp, dst_dirfd, path, 0));
  return true;
}

void SnapshotLinks::Preserve(const std::string& file_hex, uint64_t chunk) {
  const std::string name = std::to_string(chunk);
  std::lock_guard<std::mutex> l(mu_);
  if (finished_ || !taken_.insert(file_hex + "/" + name).second) return;  // linked or marked already
  const std::string path = file_hex.substr(0, 2) + "/" + file_hex + "/" + name;
  auto st = backing_->FstatAt(live_, path, AT_SYMLINK_NOFOLLOW);
  if (!st.ok()) {
    if (!Vanished(st.status())) {
      NoteFailure(st.status());
    } else if (refresh_) {  // no such chunk at the instant: neither in the refreshed snapshot
      Status s = backing_->UnlinkAt(snap_, path, 0);
      if (!s.ok() && !Vanished(s)) NoteFailure(s);
    }
    return;  // no such chunk at the instant: the one made now is not the snapshot's
  }
  Status s = LinkLocked(file_hex, name);
  if (!s.ok()) NoteFailure(s);
}

Status SnapshotLinks::Finish() {
  Status s = LinkRest();
  std::lock_guard<std::mutex> l(mu_);
  finished_ = true;
  if (failure_.ok()) failure_ = s;
  return failure_;
}

Status SnapshotLinks::LinkRest() {
  auto fail = [this](const Status& s) {
    std::lock_guard<std::mutex> l(mu_);
    NoteFailure(s);
    return failure_;
  };
  Status walked = WalkChunkDirs(backing_, live_, [this](const std::string& file, const std::string& chunk) {
    if (!IsChunkName(chunk)) return Status::Ok();  // e.g. <n>.cow of a break in progress
    std::lock_guard<std::mutex> l(mu_);
    if (taken_.contains(file + "/" + chunk)) return Status::Ok();
    Status s = LinkLocked(file, chunk);
    return Vanished(s) ? Status::Ok() : s;
  });
  if (!walked.ok()) return fail(walked);
  if (refresh_) {
    if (Status dropped = DropRest(); !dropped.ok()) return fail(dropped);
  }
  return failure();
}

Status SnapshotLinks::DropRest() {
  return WalkChunkDirs(backing_, snap_, [this](const std::string& file, const std::string& chunk) {
    const std::string path = file.substr(0, 2) + "/" + file + "/" + chunk;
    std::lock_guard<std::mutex> l(mu_);
    if (IsChunkName(chunk)) {
      if (taken_.contains(file + "/" + chunk)) return Status::Ok();  // preserved: as it was at the instant
      // Not taken, so unchanged since the instant: absent now means absent then.
      auto st = backing_->FstatAt(live_, path, AT_SYMLINK_NOFOLLOW);
      if (st.ok() || !Vanished(st.status())) return st.status();
    }
    Status s = backing_->UnlinkAt(snap_, path, 0);
    return Vanished(s) ? Status::Ok() : s;
  });
}

Status SnapshotLinks::failure() const {
  std::lock_guard<std::mutex> l(mu_);
  return failure_;
}

uint64_t SnapshotLinks::linked() const {
  std::lock_guard<std::mutex> l(mu_);
  return linked_;
}


}  // namespace cfs::store
