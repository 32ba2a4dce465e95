// FUSE tests of a root daemon mounted with allow_other: files are created
// owned by the calling user (and the group of a setgid directory), and
// default_permissions enforces access; and of the key liveness check.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "fuse_fixture.h"

namespace cfs::fstest {
namespace {

class FuseAllowOther : public FuseTest {
 protected:
  MountSpec Spec() override {
    MountSpec s;
    s.allow_other = true;
    return s;
  }
  // Runs a shell command as uid/gid 4321 (no supplementary groups).
  int AsUser(const std::string& cmd) {
    return fstest::Run("setpriv --reuid=4321 --regid=4321 --clear-groups sh -c '" + cmd + "' 2>/dev/null");
  }
};

TEST_F(FuseAllowOther, FilesAreCreatedAsTheCallerAndAccessIsEnforced) {
  if (geteuid() != 0) GTEST_FAIL() << "this test needs root (a root daemon with allow_other)";
  ASSERT_EQ(chmod(m_.mnt().c_str(), 0755), 0);
  ASSERT_EQ(mkdir(P("shared").c_str(), 01777), 0);
  ASSERT_EQ(chmod(P("shared").c_str(), 01777), 0);
  ASSERT_EQ(AsUser("echo hi > " + P("shared/f") + " && mkdir " + P("shared/d") + " && ln -s f " +
                   P("shared/l") + " && mkfifo " + P("shared/p")),
            0);
  for (const char* n : {"shared/f", "shared/d", "shared/l", "shared/p"}) {
    struct stat st;
    ASSERT_EQ(lstat(P(n).c_str(), &st), 0) << n;
    EXPECT_EQ(st.st_uid, 4321u) << n;
    EXPECT_EQ(st.st_gid, 4321u) << n;
  }
  // The host objects carry the same owner (f, d, l and p).
  int owned = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(m_.vol() + "/tree")) {
    struct stat hs;
    if (lstat(e.path().c_str(), &hs) == 0 && hs.st_uid == 4321) ++owned;
  }
  EXPECT_GE(owned, 4);
  // default_permissions: another user's 0600 file is off limits, own files are not.
  ASSERT_TRUE(WriteFile(P("shared/rootonly"), "secret"));
  ASSERT_EQ(chmod(P("shared/rootonly").c_str(), 0600), 0);
  EXPECT_NE(AsUser("cat " + P("shared/rootonly")), 0);
  EXPECT_EQ(AsUser("cat " + P("shared/f") + " >/dev/null"), 0);
  EXPECT_NE(AsUser("rm -f " + P("shared/rootonly")), 0);  // sticky directory
  // setgid directory: new entries get the directory's group.
  ASSERT_EQ(mkdir(P("grp").c_str(), 0777), 0);
  ASSERT_EQ(chown(P("grp").c_str(), 0, 777), 0);
  ASSERT_EQ(chmod(P("grp").c_str(), 02777), 0);
  ASSERT_EQ(AsUser("touch " + P("grp/g") + " && mkdir " + P("grp/sub")), 0);
  struct stat st;
  ASSERT_EQ(stat(P("grp/g").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 4321u);
  EXPECT_EQ(st.st_gid, 777u);
  ASSERT_EQ(stat(P("grp/sub").c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, 777u);
  EXPECT_NE(st.st_mode & S_ISGID, 0u);
}

class FuseKeyCheck : public FuseTest {
 protected:
  MountSpec Spec() override {
    MountSpec s;
    s.key_check = true;
    return s;
  }
};

TEST_F(FuseKeyCheck, RevokedKeyFailsAllIoWithEio) {
  ASSERT_TRUE(WriteFile(P("f"), "plaintext"));
  ASSERT_EQ(ReadFile(P("f")), "plaintext");  // now in the kernel's page cache
  m_.RevokeKey();
  bool failed = false;
  for (int i = 0; i < 100 && !failed; ++i) {  // within 10 s (polled every 100 ms)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    int fd = open(P("f").c_str(), O_RDONLY);
    failed = fd < 0 && errno == EIO;
    if (fd >= 0) close(fd);
  }
  EXPECT_TRUE(failed) << "the daemon did not notice the revoked key";
  EXPECT_EQ(open(P("g").c_str(), O_CREAT | O_WRONLY, 0600), -1);
  EXPECT_EQ(errno, EIO);
  struct stat st;
  EXPECT_EQ(stat(P("f").c_str(), &st), -1);  // cached attributes were dropped too
}

}  // namespace
}  // namespace cfs::fstest
