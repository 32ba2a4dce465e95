// FUSE tests of xattrs, statfs, access, read-only mounts, unencrypted
// volumes and the daemon's clean shutdown.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "fuse_fixture.h"

namespace cfs::fstest {
namespace {

using FuseMisc = FuseTest;

TEST_F(FuseMisc, ExtendedAttributes) {
  ASSERT_TRUE(WriteFile(P("f"), "x"));
  std::string path = P("f");
  ASSERT_EQ(setxattr(path.c_str(), "user.color", "blue", 4, 0), 0) << strerror(errno);
  ASSERT_EQ(setxattr(path.c_str(), "user.empty", "", 0, 0), 0) << strerror(errno);
  char buf[64] = {};
  EXPECT_EQ(getxattr(path.c_str(), "user.color", nullptr, 0), 4);
  ASSERT_EQ(getxattr(path.c_str(), "user.color", buf, sizeof buf), 4);
  EXPECT_EQ(std::string(buf, 4), "blue");
  EXPECT_EQ(getxattr(path.c_str(), "user.color", buf, 2), -1);
  EXPECT_EQ(errno, ERANGE);
  EXPECT_EQ(setxattr(path.c_str(), "user.color", "red", 3, XATTR_CREATE), -1);
  EXPECT_EQ(errno, EEXIST);
  EXPECT_EQ(setxattr(path.c_str(), "user.none", "red", 3, XATTR_REPLACE), -1);
  EXPECT_EQ(errno, ENODATA);
  EXPECT_EQ(getxattr(path.c_str(), "user.none", buf, sizeof buf), -1);
  EXPECT_EQ(errno, ENODATA);
  EXPECT_EQ(setxattr(path.c_str(), "trusted.x", "1", 1, 0), -1);
  char list[256] = {};
  ssize_t n = listxattr(path.c_str(), list, sizeof list);
  ASSERT_GT(n, 0);
  std::string names(list, size_t(n));
  EXPECT_NE(names.find("user.color"), std::string::npos);
  EXPECT_NE(names.find("user.empty"), std::string::npos);
  EXPECT_EQ(names.find("cfs"), std::string::npos);
  ASSERT_EQ(removexattr(path.c_str(), "user.color"), 0);
  EXPECT_EQ(getxattr(path.c_str(), "user.color", buf, sizeof buf), -1);
  ASSERT_EQ(mkdir(P("d").c_str(), 0755), 0);
  ASSERT_EQ(setxattr(P("d").c_str(), "user.dir", "v", 1, 0), 0);
  ASSERT_TRUE(m_.Remount());
  EXPECT_EQ(getxattr(P("d").c_str(), "user.dir", buf, sizeof buf), 1);
}

TEST_F(FuseMisc, StatfsAndAccess) {
  struct statvfs sv;
  ASSERT_EQ(statvfs(m_.mnt().c_str(), &sv), 0);
  EXPECT_GT(sv.f_blocks, 0u);
  EXPECT_EQ(sv.f_namemax, 255u);
  ASSERT_TRUE(WriteFile(P("f"), "x"));
  EXPECT_EQ(access(P("f").c_str(), R_OK | W_OK), 0);
  EXPECT_EQ(access(P("missing").c_str(), F_OK), -1);
  EXPECT_EQ(errno, ENOENT);
}

class FuseReadOnly : public FuseTest {};

TEST_F(FuseReadOnly, ModificationsFailWithErofs) {
  ASSERT_TRUE(WriteFile(P("f"), "kept"));
  ASSERT_TRUE(m_.Remount(/*read_only=*/true));
  EXPECT_EQ(ReadFile(P("f")), "kept");
  EXPECT_EQ(open(P("g").c_str(), O_CREAT | O_WRONLY, 0600), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(open(P("f").c_str(), O_WRONLY), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(mkdir(P("d").c_str(), 0755), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(unlink(P("f").c_str()), -1);
  EXPECT_EQ(errno, EROFS);
}

class FuseUnencrypted : public FuseTest {
 protected:
  MountSpec Spec() override {
    MountSpec s;
    s.encrypted = false;
    return s;
  }
};

TEST_F(FuseUnencrypted, NamesArePlainAndEverythingWorks) {
  ASSERT_EQ(mkdir(P("plain-dir").c_str(), 0755), 0);
  ASSERT_TRUE(WriteFile(P("plain-dir/file"), "content"));
  ASSERT_EQ(symlink("file", P("plain-dir/ln").c_str()), 0);
  ASSERT_EQ(setxattr(P("plain-dir/file").c_str(), "user.k", "v", 1, 0), 0);
  EXPECT_EQ(ReadFile(P("plain-dir/ln")), "content");
  struct stat st;
  EXPECT_EQ(stat((m_.vol() + "/tree/plain-dir/file").c_str(), &st), 0);
  EXPECT_EQ(getxattr((m_.vol() + "/tree/plain-dir/file").c_str(), "user.cfs.x.user.k", nullptr, 0), 1);
  ASSERT_EQ(rename(P("plain-dir/file").c_str(), P("moved").c_str()), 0);
  ASSERT_TRUE(m_.Remount());
  EXPECT_EQ(ReadFile(P("moved")), "content");
  ASSERT_EQ(unlink(P("moved").c_str()), 0);
  ASSERT_EQ(unlink(P("plain-dir/ln").c_str()), 0);
  ASSERT_EQ(rmdir(P("plain-dir").c_str()), 0);
}

}  // namespace
}  // namespace cfs::fstest
