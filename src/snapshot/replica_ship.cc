#include "snapshot/replica_ship.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <map>

#include <fmt/format.h>

#include "common/atomic_file.h"
#include "common/log.h"
#include "snapshot/volume_copy.h"

namespace cfs::snapshot {
namespace {

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Status RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return Status::FromErrno(ec.value(), "remove " + path);
  return Status::Ok();
}

bool Exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

Status InstallDir(const std::string& staging, const std::string& replica_dir) {
  std::string parent = replica_dir.substr(0, replica_dir.rfind('/'));
  if (!Exists(replica_dir)) {
    if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, replica_dir.c_str(), RENAME_NOREPLACE) != 0) {
      return Status::FromErrno(errno, "rename into " + replica_dir);
    }
    return FsyncDir(parent);
  }
  if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, replica_dir.c_str(), RENAME_EXCHANGE) != 0) {
    return Status::FromErrno(errno, "swap into " + replica_dir);
  }
  // `staging` now holds the previous image: kept, the next shipment starts
  // from it (ShipStaging::Open).
  return FsyncDir(parent);
}

}  // namespace

void DiffChunks(const std::vector<ChunkFile>& before, const std::vector<ChunkFile>& now,
                std::vector<ChunkFile>* changed, std::vector<std::string>* removed, uint64_t* unchanged) {
  std::map<std::string, const ChunkFile*> old;
  for (const auto& c : before) old[c.rel] = &c;
  for (const auto& c : now) {
    auto it = old.find(c.rel);
    if (it != old.end() && it->second->inode == c.inode && it->second->size == c.size) {
      ++*unchanged;
    } else {
      changed->push_back(c);
    }
    if (it != old.end()) old.erase(it);
  }
  for (const auto& [rel, c] : old) removed->push_back(rel);
}

Result<std::unique_ptr<ShipStaging>> ShipStaging::Open(store::Backing* b, const std::string& replica_dir,
                                                       bool keep_tree) {
  std::unique_ptr<ShipStaging> st(new ShipStaging(b, replica_dir));
  // The image before the current one, kept by the last Install, is brought
  // to the current one in place: only what changed is relinked or copied.
  const bool reuse = Exists(replica_dir) && Exists(st->staging_);
  if (reuse) {
    // A manifest names chunks a receiver trusts as arrived: never an old one.
    if (::unlink((st->staging_ + "/manifest").c_str()) != 0 && errno != ENOENT) {
      return Status::FromErrno(errno, "unlink " + st->staging_ + "/manifest");
    }
    if (!keep_tree) CFS_RETURN_IF_ERROR(RemoveTree(st->staging_ + "/tree"));
  } else {
    CFS_RETURN_IF_ERROR(RemoveTree(st->staging_));
    if (::mkdir(st->staging_.c_str(), 0700) != 0) return Status::FromErrno(errno, "mkdir " + st->staging_);
  }
  CopyOptions opt;
  opt.sync = false;  // SyncReceivedVolume at Install
  opt.reuse = reuse;
  if (Exists(replica_dir)) {
    CFS_RETURN_IF_ERROR(CopyVolumeObjects(b, replica_dir, st->staging_, opt, nullptr));
  } else if (::mkdir((st->staging_ + "/objects").c_str(), 0700) != 0) {
    return Status::FromErrno(errno, "mkdir " + st->staging_ + "/objects");
  }
  CFS_ASSIGN_OR_RETURN(st->receiver_, LocalReceiver::Open(b, st->staging_, st->staging_ + "/manifest"));
  return st;
}

ShipStaging::~ShipStaging() {
  receiver_.reset();
  if (installed_) return;
  Status rm = RemoveTree(staging_);
  if (!rm.ok()) log::Warn("replica ship: could not remove {}: {}", staging_, rm.ToString());
}

Status ShipStaging::Install(const config::VolumeDescriptor& d) {
  CFS_RETURN_IF_ERROR(receiver_->Finish());
  receiver_.reset();
  if (::unlink((staging_ + "/manifest").c_str()) != 0) return Status::FromErrno(errno, "unlink manifest");
  CFS_RETURN_IF_ERROR(config::WriteVolumeDescriptor(staging_, d));
  // One syncfs: measured against fsyncing the image's own files and
  // directories one by one (tree/ files, ~1 directory per chunk: a journal
  // commit each), it is the quicker install (docs/regions.md).
  CFS_RETURN_IF_ERROR(SyncReceivedVolume(b_, staging_));
  CFS_RETURN_IF_ERROR(InstallDir(staging_, replica_));
  installed_ = true;
  return Status::Ok();
}

Status ShipImage(store::Backing* b, const std::string& new_snapshot_dir, const std::string& old_snapshot_dir,
                 const std::string& replica_dir, const config::VolumeDescriptor& d, const TransferOptions& options,
                 ShipReport* report) {
  ShipReport local;
  ShipReport* r = report ? report : &local;
  int64_t t0 = NowUs();
  CFS_ASSIGN_OR_RETURN(std::vector<ChunkFile> now, ListChunkFiles(b, new_snapshot_dir));
  std::vector<ChunkFile> before;
  // Without a previous image everything is sent, whatever was shipped before.
  if (!old_snapshot_dir.empty() && Exists(replica_dir)) {
    CFS_ASSIGN_OR_RETURN(before, ListChunkFiles(b, old_snapshot_dir));
  }
  std::vector<ChunkFile> changed;
  std::vector<std::string> removed;
  DiffChunks(before, now, &changed, &removed, &r->chunks_unchanged);
  CFS_ASSIGN_OR_RETURN(std::unique_ptr<ShipStaging> st, ShipStaging::Open(b, replica_dir));
  CopyOptions opt;
  opt.sync = false;
  opt.reuse = true;  // the staging folder may hold an earlier image's tree/
  int64_t t1 = NowUs();
  CFS_RETURN_IF_ERROR(CopyVolumeTree(b, new_snapshot_dir, st->dir(), opt, nullptr));
  r->tree_us = NowUs() - t1;
  for (const auto& rel : removed) CFS_RETURN_IF_ERROR(st->receiver()->Remove(rel));
  CFS_RETURN_IF_ERROR(TransferChunks(b, new_snapshot_dir, changed, st->receiver(), options, &r->transfer));
  int64_t t2 = NowUs();
  CFS_RETURN_IF_ERROR(st->Install(d));
  r->install_us = NowUs() - t2;
  r->chunks_removed = removed.size();
  r->total_us = NowUs() - t0;
  return Status::Ok();
}

}  // namespace cfs::snapshot
