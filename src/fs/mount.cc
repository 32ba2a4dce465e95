// ServeVolume: opens a volume (keys, data store, tree), mounts it with
// libfuse's low-level API and serves it on a multi-threaded loop until it
// is unmounted.
#include "fs/mount.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "common/log.h"
#include "fs/fuse_ops.h"
#include "fs/kernel_tuning.h"
#include "fs/volume_fs.h"
#include "store/names.h"
#include "store/tree.h"
#include "store/tree_fd.h"

namespace cfs::fs {
namespace {

// Kernel readahead window of the mount: four 1 MiB requests in flight, so
// backing reads and decryption on both cores overlap (1 MiB: 180-220 MB/s,
// 4 MiB: 230-300 MB/s on the bench VM; docs/performance.md).
constexpr unsigned kReadaheadKib = 4096;

// Polls MountOptions::key_check until stopped; a false answer kills the keys.
class KeyWatch {
 public:
  KeyWatch(VolumeFs* fs, const MountOptions& o) {
    if (!o.key_check) return;
    thread_ = std::thread([this, fs, check = o.key_check, every = o.key_check_interval] {
      std::unique_lock<std::mutex> lock(mu_);
      while (!cv_.wait_for(lock, every, [this] { return stop_; })) {
        lock.unlock();
        bool alive = check();
        lock.lock();
        if (!alive) {
          fs->KillKeys();
          return;
        }
      }
    });
  }
  ~KeyWatch() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mu_;  // guards stop_
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

std::vector<std::string> FuseArgs(const MountOptions& o) {
  std::vector<std::string> args = {"cipherfs", "-o", "fsname=cipherfs,subtype=cipherfs,default_permissions"};
  if (o.allow_other) args.insert(args.end(), {"-o", "allow_other"});
  if (o.read_only) args.insert(args.end(), {"-o", "ro"});
  for (const std::string& opt : o.fuse_options) args.insert(args.end(), {"-o", opt});
  if (o.debug) args.push_back("-d");
  return args;
}

class Live final : public LiveMount {
 public:
  Live(VolumeFs* fs, store::DataStore* data, std::string mountpoint)
      : fs_(fs), data_(data), mountpoint_(std::move(mountpoint)) {}
  store::DataStore& data() override { return *data_; }
  void PauseNamespace(bool pause) override {
    if (pause) fs_->modify_gate().Pause();
    else fs_->modify_gate().Resume();
  }
  Status FlushKernelCache() override {
    if (!fs_->writeback_cache()) return Status::Ok();
    // Our own FUSE threads serve the open and the writes syncfs sends.
    int fd = ::open(mountpoint_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Status(Code::kIoError, "could not open the mountpoint to flush it", errno);
    int rc = ::syncfs(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return Status(Code::kIoError, "could not write back the mount's cached writes", err);
    return Status::Ok();
  }

 private:
  VolumeFs* fs_;
  store::DataStore* data_;
  std::string mountpoint_;
};

// Mounts, serves until unmounted, unmounts.
Status RunSession(VolumeFs* fs, store::DataStore* data, const MountOptions& o) {
  Session session{fs, 64, fs->writeback_cache()};
  std::vector<std::string> args = FuseArgs(o);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  fuse_args fargs = FUSE_ARGS_INIT(int(argv.size()), argv.data());
  fuse_lowlevel_ops ops = CipherfsOps();  // fuse_session_new copies it
  // With the writeback cache, SEEK_DATA/SEEK_HOLE sent to us would not see
  // dirty pages still in the kernel (it does not write them back first):
  // without an lseek op the kernel answers from its own size (all data).
  if (fs->writeback_cache()) ops.lseek = nullptr;
  fuse_session* se = fuse_session_new(&fargs, &ops, sizeof(ops), &session);
  if (se == nullptr) return InvalidArgument("libfuse refused the mount options");
  if (fuse_set_signal_handlers(se) != 0) {
    fuse_session_destroy(se);
    return Internal("could not install signal handlers");
  }
  if (fuse_session_mount(se, o.mountpoint.c_str()) != 0) {
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    return Status(Code::kUnavailable, "could not mount on " + o.mountpoint + " (in use, or no /dev/fuse?)", EBUSY);
  }
  fs->set_session(se);
  log::Info("fs: mounted on {}", o.mountpoint);
  // Sequential reads as 1 MiB requests instead of 128 KiB ones.
  if (Status ra = SetMountReadahead(o.mountpoint, kReadaheadKib); !ra.ok()) {
    log::Debug("fs: readahead left at the kernel default: {}", ra.ToString());
  }
  if (o.on_mounted) o.on_mounted();
  int rc;
  Live live(fs, data, o.mountpoint);
  if (o.on_live) o.on_live(&live);
  {
    KeyWatch watch(fs, o);
    fuse_loop_config* cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(cfg, o.max_threads == 0 ? 16 : o.max_threads);
    fuse_loop_cfg_set_clone_fd(cfg, 0);
    rc = fuse_session_loop_mt(se, cfg);
    fuse_loop_cfg_destroy(cfg);
  }
  if (o.on_live) o.on_live(nullptr);
  fs->set_session(nullptr);
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  fuse_session_destroy(se);  // sends destroy (clean data store close) if the kernel did not
  if (rc != 0) return Status(Code::kIoError, "FUSE loop ended with an error", rc < 0 ? -rc : EIO);
  return Status::Ok();
}

}  // namespace

Status ServeVolume(store::Backing* backing, SecretBytes data_key, const MountOptions& o) {
  if (!DisableCoreDumps()) log::Warn("fs: could not disable core dumps");
  umask(0);  // modes come from the kernel, already masked by the caller's umask
  CFS_ASSIGN_OR_RETURN(int vfd, backing->OpenAt(AT_FDCWD, o.volume_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  store::ScopedFd volume(backing, vfd);
  std::unique_ptr<store::VolumeKeys> keys;
  std::unique_ptr<store::NameCodec> codec;
  if (o.encrypted) {
    CFS_ASSIGN_OR_RETURN(keys, store::VolumeKeys::Derive(data_key));
    CFS_ASSIGN_OR_RETURN(codec, store::NameCodec::CreateEncrypted(keys.get(), data_key));
  } else {
    codec = store::NameCodec::CreatePlain();
  }
  data_key.Wipe();
  store::DataStoreOptions sopt;
  sopt.chunk_blocks = o.chunk_blocks;
  sopt.read_only = o.read_only;
  // For A/B measurements and as a way out: every chunk sync an fdatasync.
  sopt.sync_overwrites_in_place = getenv("CIPHERFS_FULL_FDATASYNC") == nullptr;
  CFS_ASSIGN_OR_RETURN(auto data_store, store::DataStore::Open(backing, vfd, keys.get(), sopt));
  if (data_store->unclean() && !o.read_only) {
    CFS_ASSIGN_OR_RETURN(uint64_t torn, data_store->RecoverTornBlocks());
    log::Warn("fs: volume was not closed cleanly; {} torn block(s) re-tagged", torn);
  }
  store::Tree tree(backing, std::move(codec));
  CFS_ASSIGN_OR_RETURN(int root_fd, backing->OpenAt(vfd, "tree", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  auto root_st = backing->Fstat(root_fd);
  if (!root_st.ok()) {
    static_cast<void>(backing->Close(root_fd));
    return root_st.status();
  }
  if (auto id = tree.ReadDirId(root_fd); !id.ok()) {
    static_cast<void>(backing->Close(root_fd));
    return id.status().WithContext("volume root");
  }
  VolumeFsConfig config;
  config.read_only = o.read_only;
  config.writeback_cache = !o.read_only && getenv("CIPHERFS_NO_WRITEBACK_CACHE") == nullptr;
  // A read-only mount may run beside the cluster's writer (same-region
  // replica, docs/regions.md): names and attributes expire after 1 s.
  if (o.read_only) config.timeout = 1.0;
  VolumeFs fs(backing, data_store.get(), &tree, keys.get(), root_fd, *root_st, config);
  return RunSession(&fs, data_store.get(), o);
}

}  // namespace cfs::fs
