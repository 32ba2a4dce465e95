// FuseMount implementation; see fuse_fixture.h.
#include "fuse_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace cfs::fstest {
namespace fsys = std::filesystem;

int Run(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

namespace {

std::string Capture(const std::string& cmd, int* rc) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) {
    *rc = -1;
    return out;
  }
  char buf[256];
  while (fgets(buf, sizeof buf, p) != nullptr) out += buf;
  int st = pclose(p);
  *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

bool IsMounted(const std::string& mnt) {
  std::ifstream in("/proc/self/mounts");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string dev, where;
    ls >> dev >> where;
    if (where == mnt) return true;
  }
  return false;
}

}  // namespace

bool FuseMount::Start(const MountSpec& spec) {
  spec_ = spec;
  if (access("/dev/fuse", R_OK | W_OK) != 0) {
    ADD_FAILURE() << "/dev/fuse is missing or not accessible: FUSE tests need it (modprobe fuse; "
                     "in a container, pass --device /dev/fuse --cap-add SYS_ADMIN)";
    return false;
  }
  char tmpl[] = "/tmp/cfs-fuse-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    ADD_FAILURE() << "mkdtemp failed";
    return false;
  }
  root_ = tmpl;
  chmod(root_.c_str(), 0755);  // other users reach the mount point (allow_other tests)
  vol_ = root_ + "/vol";
  mnt_ = root_ + "/mnt";
  pidfile_ = root_ + "/daemon.pid";
  fsys::create_directories(mnt_);
  int rc;
  std::string cmd = std::string(CFS_DEVMOUNT) + " create " + vol_ + (spec.encrypted ? "" : " --unencrypted");
  key_ = Capture(cmd, &rc);
  if (rc != 0) {
    ADD_FAILURE() << "devmount create failed (" << rc << ")";
    return false;
  }
  return Serve(spec.read_only);
}

bool FuseMount::Serve(bool read_only) {
  std::string cmd = std::string(CFS_DEVMOUNT) + " serve " + vol_ + " " + mnt_ + " --pidfile " + pidfile_;
  if (spec_.encrypted) cmd += " --key " + key_;
  if (read_only) cmd += " --ro";
  if (spec_.allow_other) cmd += " --allow-other";
  if (spec_.key_check) {
    WriteFile(root_ + "/key-ok", "");
    cmd += " --key-check-file " + root_ + "/key-ok --key-check-ms 100";
  }
  cmd += " 2>>" + root_ + "/daemon.log";
  if (Run(cmd) != 0 || !IsMounted(mnt_)) {
    ADD_FAILURE() << "devmount serve failed; log: " << root_ << "/daemon.log";
    return false;
  }
  mounted_ = true;
  return true;
}

bool FuseMount::Stop() {
  if (!mounted_) return true;
  bool ok = false;
  for (int i = 0; i < 50 && !ok; ++i) {
    ok = Run("fusermount3 -u " + mnt_ + " 2>/dev/null") == 0;
    if (!ok) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!ok) Run("fusermount3 -uz " + mnt_ + " 2>/dev/null");
  mounted_ = false;
  // Wait for the daemon to finish its clean close.
  std::ifstream pf(pidfile_);
  int pid = 0;
  if (pf >> pid && pid > 0) {
    for (int i = 0; i < 200 && kill(pid, 0) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return ok;
}

void FuseMount::RevokeKey() { unlink((root_ + "/key-ok").c_str()); }

bool FuseMount::Remount(bool read_only) {
  Stop();
  return Serve(read_only);
}

FuseMount::~FuseMount() {
  Stop();
  if (!root_.empty() && !IsMounted(mnt_)) {
    std::error_code ec;
    if (getenv("CIPHERFS_KEEP_TMP") == nullptr) fsys::remove_all(root_, ec);
  }
}

bool WriteFile(const std::string& path, const std::string& data, int flags) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | flags, 0644);
  if (fd < 0) return false;
  bool ok = write(fd, data.data(), data.size()) == ssize_t(data.size());
  return close(fd) == 0 && ok;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool TreeContains(const std::string& dir, const std::string& needle) {
  for (const auto& e : fsys::recursive_directory_iterator(dir)) {
    if (e.path().filename().string().find(needle) != std::string::npos) return true;
    if (e.is_symlink()) {
      if (fsys::read_symlink(e.path()).string().find(needle) != std::string::npos) return true;
      continue;
    }
    if (e.is_regular_file() && ReadFile(e.path()).find(needle) != std::string::npos) return true;
  }
  return false;
}

}  // namespace cfs::fstest
