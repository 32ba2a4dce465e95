// Kernel-side tuning of a FUSE mount; see kernel_tuning.h.
#include "fs/kernel_tuning.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace cfs::fs {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool octal = true;
      for (size_t k = 1; k <= 3; ++k) {
        char c = s[i + k];
        if (c < '0' || c > '7') octal = false;
        v = v * 8 + (c - '0');
      }
      if (octal) {
        out.push_back(char(v));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

std::string Canonical(const std::string& path) {
  char* real = realpath(path.c_str(), nullptr);
  if (real == nullptr) return path;
  std::string out(real);
  free(real);
  return out;
}

}  // namespace

Result<std::string> MountDeviceId(const std::string& mountpoint) {
  const std::string want = Canonical(mountpoint);
  std::ifstream in("/proc/self/mountinfo");
  if (!in) return Status(Code::kUnavailable, "cannot read /proc/self/mountinfo", errno);
  std::string line, found;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, point;
    if (!(fields >> id >> parent >> dev >> root >> point)) continue;
    if (Unescape(point) == want) found = dev;  // the last one is the top of a stack of mounts
  }
  if (found.empty()) return Status(Code::kNotFound, "nothing mounted on " + mountpoint, ENOENT);
  return found;
}

Status SetMountReadahead(const std::string& mountpoint, unsigned kib) {
  CFS_ASSIGN_OR_RETURN(std::string dev, MountDeviceId(mountpoint));
  std::string path = "/sys/class/bdi/" + dev + "/read_ahead_kb";
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Status(Code::kUnavailable, "cannot open " + path, errno);
  std::string value = std::to_string(kib) + "\n";
  ssize_t n = write(fd, value.data(), value.size());
  int err = errno;
  close(fd);
  if (n != ssize_t(value.size())) return Status(Code::kUnavailable, "cannot write " + path, err);
  return Status::Ok();
}

}  // namespace cfs::fs
