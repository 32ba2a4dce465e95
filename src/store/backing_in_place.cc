// PosixBacking::OverwritesInPlace: which filesystems overwrite in place
// (SyncOverwrites, in backing.cc, relies on it).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "store/backing.h"

namespace cfs::store {
namespace {

constexpr long kExtSuperMagic = 0xEF53;  // ext2, ext3 and ext4

// The superblock options of the filesystem with device `dev`, from
// /proc/self/mountinfo ("... maj:min ... - fstype source superopts"); false
// if no line names it.
bool SuperOptions(dev_t dev, std::string* opts) {
  std::ifstream in("/proc/self/mountinfo");
  const std::string want = std::to_string(major(dev)) + ":" + std::to_string(minor(dev));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string id, parent, devno;
    if (!(f >> id >> parent >> devno) || devno != want) continue;
    size_t sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    std::istringstream tail(line.substr(sep + 3));
    std::string fstype, source;
    if (tail >> fstype >> source >> *opts) return true;
  }
  return false;
}

bool HasOption(const std::string& opts, const std::string& name) {
  return ("," + opts + ",").find("," + name + ",") != std::string::npos;
}

}  // namespace

// ext4 writes an overwrite of an allocated, written block to that block
// (delayed allocation and unwritten extents only concern holes), except
// with data=journal (the data goes through the journal, which only the
// file's own fsync commits) and dax (no page cache to write back).
// Other filesystems say no: btrfs and reflinked XFS write elsewhere.
bool PosixBacking::OverwritesInPlace(int fd) {
  struct statfs sf {};
  struct stat st {};
  if (fstatfs(fd, &sf) != 0 || sf.f_type != kExtSuperMagic || fstat(fd, &st) != 0) return false;
  std::string opts;
  if (!SuperOptions(st.st_dev, &opts)) return false;
  return !HasOption(opts, "data=journal") && !HasOption(opts, "dax") && !HasOption(opts, "dax=always");
}

}  // namespace cfs::store
