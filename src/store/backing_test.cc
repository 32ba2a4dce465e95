// Tests of PosixBacking against a real temporary directory.
#include "store/backing.h"

#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace cfs::store {
namespace {

class PosixBackingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "cfs_backing_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    dirfd_ = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(dirfd_, 0);
  }
  void TearDown() override {
    if (dirfd_ >= 0) close(dirfd_);
    std::filesystem::remove_all(dir_);
  }

  int Create(const std::string& name) {
    auto fd = b_.OpenAt(dirfd_, name, O_RDWR | O_CREAT | O_EXCL, 0600);
    EXPECT_TRUE(fd.ok()) << fd.status().ToString();
    return fd.ok() ? *fd : -1;
  }

  PosixBacking b_;
  std::string dir_;
  int dirfd_ = -1;
};

std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(i * 31 + seed + (i >> 12));
  return v;
}

TEST_F(PosixBackingTest, WriteThenReadRoundTripsLargeBuffers) {
  int fd = Create("f");
  auto data = Pattern(3 * 1024 * 1024 + 123, 7);
  ASSERT_TRUE(b_.PWrite(fd, data.data(), data.size(), 4096).ok());
  std::vector<uint8_t> back(data.size());
  auto n = b_.PRead(fd, back.data(), back.size(), 4096);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, data.size());
  EXPECT_EQ(back, data);
  EXPECT_TRUE(b_.Close(fd).ok());
}

TEST_F(PosixBackingTest, ReadIsShortOnlyAtEndOfFile) {
  int fd = Create("f");
  auto data = Pattern(1000, 1);
  ASSERT_TRUE(b_.PWrite(fd, data.data(), data.size(), 0).ok());
  std::vector<uint8_t> back(4096, 0xee);
  auto n = b_.PRead(fd, back.data(), back.size(), 500);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 500u);
  EXPECT_TRUE(std::equal(back.begin(), back.begin() + 500, data.begin() + 500));
  auto past = b_.PRead(fd, back.data(), back.size(), 5000);
  ASSERT_TRUE(past.ok());
  EXPECT_EQ(*past, 0u);
  EXPECT_TRUE(b_.Close(fd).ok());
}

TEST_F(PosixBackingTest, OpenMissingFileIsNotFoundWithErrno) {
  auto fd = b_.OpenAt(dirfd_, "missing", O_RDONLY, 0);
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.status().code(), Code::kNotFound);
  EXPECT_EQ(fd.status().sys_errno(), ENOENT);
  EXPECT_NE(fd.status().message().find("openat"), std::string::npos);
}

TEST_F(PosixBackingTest, OpenedFdsAreCloseOnExec) {
  int fd = Create("f");
  EXPECT_NE(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
  EXPECT_TRUE(b_.Close(fd).ok());
}

TEST_F(PosixBackingTest, ErrorsOnBadFdCarryEbadf) {
  char c;
  EXPECT_EQ(b_.PRead(-1, &c, 1, 0).status().sys_errno(), EBADF);
  EXPECT_EQ(b_.PWrite(-1, &c, 1, 0).sys_errno(), EBADF);
  EXPECT_EQ(b_.Fsync(-1, false).sys_errno(), EBADF);
  EXPECT_EQ(b_.Fsync(-1, true).sys_errno(), EBADF);
  EXPECT_EQ(b_.Ftruncate(-1, 0).sys_errno(), EBADF);
  EXPECT_EQ(b_.Fstat(-1).status().sys_errno(), EBADF);
  EXPECT_EQ(b_.Close(-1).sys_errno(), EBADF);
  EXPECT_EQ(b_.ListDir(-1).status().sys_errno(), EBADF);
}

TEST_F(PosixBackingTest, WriteToReadOnlyFdFails) {
  close(Create("f"));
  auto fd = b_.OpenAt(dirfd_, "f", O_RDONLY, 0);
  ASSERT_TRUE(fd.ok());
  char c = 1;
  Status s = b_.PWrite(*fd, &c, 1, 0);
  EXPECT_EQ(s.sys_errno(), EBADF);
  EXPECT_EQ(s.code(), Code::kIoError);
  EXPECT_TRUE(b_.Close(*fd).ok());
}

TEST_F(PosixBackingTest, FsyncTruncateStatAndPunchHole) {
  int fd = Create("f");
  auto data = Pattern(5 * 4096, 3);
  ASSERT_TRUE(b_.PWrite(fd, data.data(), data.size(), 0).ok());
  EXPECT_TRUE(b_.Fsync(fd, false).ok());
  EXPECT_TRUE(b_.Fsync(fd, true).ok());
  ASSERT_TRUE(b_.Fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 4096).ok());
  std::vector<uint8_t> back(4096, 1);
  ASSERT_TRUE(b_.PRead(fd, back.data(), back.size(), 4096).ok());
  EXPECT_EQ(back, std::vector<uint8_t>(4096, 0));
  auto hole = b_.Lseek(fd, 0, SEEK_HOLE);
  ASSERT_TRUE(hole.ok());
  EXPECT_EQ(*hole, 4096);
  ASSERT_TRUE(b_.Ftruncate(fd, 100).ok());
  auto st = b_.Fstat(fd);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->st_size, 100);
  EXPECT_EQ(b_.Lseek(fd, 200, SEEK_DATA).status().sys_errno(), ENXIO);
  EXPECT_TRUE(b_.Close(fd).ok());
}

TEST_F(PosixBackingTest, NamespaceOperations) {
  ASSERT_TRUE(b_.MkdirAt(dirfd_, "d", 0700).ok());
  EXPECT_EQ(b_.MkdirAt(dirfd_, "d", 0700).code(), Code::kAlreadyExists);
  close(Create("a"));
  ASSERT_TRUE(b_.LinkAt(dirfd_, "a", dirfd_, "b", 0).ok());
  auto st = b_.FstatAt(dirfd_, "a", AT_SYMLINK_NOFOLLOW);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->st_nlink, 2u);
  EXPECT_EQ(b_.RenameAt(dirfd_, "a", dirfd_, "b", RENAME_NOREPLACE).sys_errno(), EEXIST);
  ASSERT_TRUE(b_.RenameAt(dirfd_, "a", dirfd_, "c", 0).ok());
  ASSERT_TRUE(b_.UnlinkAt(dirfd_, "b", 0).ok());
  ASSERT_TRUE(b_.MknodAt(dirfd_, "fifo", S_IFIFO | 0600, 0).ok());
  auto names = b_.ListDir(dirfd_);
  ASSERT_TRUE(names.ok());
  std::sort(names->begin(), names->end());
  EXPECT_EQ(*names, (std::vector<std::string>{"c", "d", "fifo"}));
  ASSERT_TRUE(b_.UnlinkAt(dirfd_, "d", AT_REMOVEDIR).ok());
  EXPECT_EQ(b_.FstatAt(dirfd_, "d", 0).status().code(), Code::kNotFound);
}

TEST_F(PosixBackingTest, ListDirWorksOnOPathFdAndManyEntries) {
  for (int i = 0; i < 300; ++i) close(Create("n" + std::to_string(i)));
  auto pfd = b_.OpenAt(dirfd_, ".", O_PATH | O_DIRECTORY, 0);
  ASSERT_TRUE(pfd.ok());
  for (int round = 0; round < 2; ++round) {  // no shared readdir position
    auto names = b_.ListDir(*pfd);
    ASSERT_TRUE(names.ok()) << names.status().ToString();
    EXPECT_EQ(names->size(), 300u);
  }
  EXPECT_TRUE(b_.Close(*pfd).ok());
}

TEST_F(PosixBackingTest, SymlinkAndLongReadlink) {
  std::string target(1000, 'x');
  target += "/end";
  ASSERT_TRUE(b_.SymlinkAt(target, dirfd_, "l").ok());
  auto back = b_.ReadlinkAt(dirfd_, "l");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, target);
  auto lfd = b_.OpenAt(dirfd_, "l", O_PATH | O_NOFOLLOW, 0);
  ASSERT_TRUE(lfd.ok());
  auto viafd = b_.ReadlinkAt(*lfd, "");
  ASSERT_TRUE(viafd.ok()) << viafd.status().ToString();
  EXPECT_EQ(*viafd, target);
  EXPECT_TRUE(b_.Close(*lfd).ok());
  EXPECT_EQ(b_.ReadlinkAt(dirfd_, "nolink").status().code(), Code::kNotFound);
}

TEST_F(PosixBackingTest, StatvfsOfBackingDir) {
  auto sv = b_.Fstatvfs(dirfd_);
  ASSERT_TRUE(sv.ok());
  EXPECT_GT(sv->f_bsize, 0u);
}

// The attribute methods must work on O_PATH fds (the FUSE inode table holds
// O_PATH fds) and on ordinary fds.
class PosixBackingAttrTest : public PosixBackingTest, public ::testing::WithParamInterface<bool> {
 protected:
  int OpenForAttrs(const std::string& name) {
    int flags = GetParam() ? O_PATH : O_RDONLY;
    auto fd = b_.OpenAt(dirfd_, name, flags, 0);
    EXPECT_TRUE(fd.ok());
    return fd.ok() ? *fd : -1;
  }
};

TEST_P(PosixBackingAttrTest, ChmodChownUtimens) {
  close(Create("f"));
  int fd = OpenForAttrs("f");
  ASSERT_TRUE(b_.Fchmod(fd, 0640).ok());
  ASSERT_TRUE(b_.Fchown(fd, getuid(), getgid()).ok());
  struct timespec ts[2] = {{1000, 5}, {2000, 7}};
  ASSERT_TRUE(b_.Futimens(fd, ts).ok());
  auto st = b_.Fstat(fd);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->st_mode & 07777, 0640u);
  EXPECT_EQ(st->st_mtim.tv_sec, 2000);
  EXPECT_EQ(st->st_mtim.tv_nsec, 7);
  EXPECT_EQ(st->st_atim.tv_sec, 1000);
  EXPECT_TRUE(b_.Close(fd).ok());
  EXPECT_TRUE(b_.FchownAt(dirfd_, "f", getuid(), getgid(), AT_SYMLINK_NOFOLLOW).ok());
  struct timespec ts2[2] = {{3000, 0}, {4000, 0}};
  ASSERT_TRUE(b_.UtimensAt(dirfd_, "f", ts2, AT_SYMLINK_NOFOLLOW).ok());
  auto st2 = b_.FstatAt(dirfd_, "f", 0);
  ASSERT_TRUE(st2.ok());
  EXPECT_EQ(st2->st_mtim.tv_sec, 4000);
}

TEST_P(PosixBackingAttrTest, Xattrs) {
  close(Create("f"));
  int fd = OpenForAttrs("f");
  const std::string v = "value-bytes";
  ASSERT_TRUE(b_.Fsetxattr(fd, "user.cfs", v.data(), v.size(), XATTR_CREATE).ok());
  EXPECT_EQ(b_.Fsetxattr(fd, "user.cfs", v.data(), v.size(), XATTR_CREATE).sys_errno(), EEXIST);
  char buf[64];
  auto n = b_.Fgetxattr(fd, "user.cfs", buf, sizeof(buf));
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(std::string(buf, *n), v);
  auto need = b_.Fgetxattr(fd, "user.cfs", nullptr, 0);
  ASSERT_TRUE(need.ok());
  EXPECT_EQ(*need, v.size());
  EXPECT_EQ(b_.Fgetxattr(fd, "user.cfs", buf, 2).status().sys_errno(), ERANGE);
  char list[256];
  auto ln = b_.Flistxattr(fd, list, sizeof(list));
  ASSERT_TRUE(ln.ok());
  EXPECT_NE(std::string(list, *ln).find("user.cfs"), std::string::npos);
  ASSERT_TRUE(b_.Fremovexattr(fd, "user.cfs").ok());
  EXPECT_EQ(b_.Fgetxattr(fd, "user.cfs", buf, sizeof(buf)).status().sys_errno(), ENODATA);
  EXPECT_TRUE(b_.Close(fd).ok());
}

INSTANTIATE_TEST_SUITE_P(OPathAndPlainFds, PosixBackingAttrTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "OPath" : "Plain"; });

}  // namespace
}  // namespace cfs::store
