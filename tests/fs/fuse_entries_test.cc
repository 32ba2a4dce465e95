// FUSE tests of names: directories, rename (and its flags), hard links,
// symlinks, fifos, long names, readdir, and that the backing directory of
// an encrypted volume holds no plaintext name or content.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <set>
#include <string>

#include "fuse_fixture.h"

namespace cfs::fstest {
namespace {

namespace fsys = std::filesystem;

std::set<std::string> List(const std::string& dir) {
  std::set<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) out.insert(e->d_name);
  closedir(d);
  return out;
}

size_t CountFiles(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : fsys::recursive_directory_iterator(dir)) n += e.is_regular_file() ? 1 : 0;
  return n;
}

using FuseEntries = FuseTest;

TEST_F(FuseEntries, MkdirRmdirAndNotEmpty) {
  ASSERT_EQ(mkdir(P("d").c_str(), 0750), 0) << strerror(errno);
  struct stat st;
  ASSERT_EQ(stat(P("d").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  ASSERT_TRUE(WriteFile(P("d/f"), "x"));
  EXPECT_EQ(rmdir(P("d").c_str()), -1);
  EXPECT_EQ(errno, ENOTEMPTY);
  EXPECT_EQ(mkdir(P("d").c_str(), 0755), -1);
  EXPECT_EQ(errno, EEXIST);
  ASSERT_EQ(unlink(P("d/f").c_str()), 0);
  EXPECT_EQ(List(P("d")), (std::set<std::string>{".", ".."}));  // .cfsdir never shows
  ASSERT_EQ(rmdir(P("d").c_str()), 0) << strerror(errno);
  EXPECT_EQ(stat(P("d").c_str(), &st), -1);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(rmdir(P("nope").c_str()), -1);
  EXPECT_EQ(errno, ENOENT);
}

TEST_F(FuseEntries, SetgidDirectoryInheritsGroupAndBit) {
  ASSERT_EQ(mkdir(P("g").c_str(), 0755), 0);
  ASSERT_EQ(chown(P("g").c_str(), 0, 12345), 0) << strerror(errno);
  ASSERT_EQ(chmod(P("g").c_str(), 02775), 0);
  ASSERT_TRUE(WriteFile(P("g/f"), "x"));
  ASSERT_EQ(mkdir(P("g/sub").c_str(), 0755), 0);
  struct stat st;
  ASSERT_EQ(stat(P("g/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, 12345u);
  ASSERT_EQ(stat(P("g/sub").c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, 12345u);
  EXPECT_NE(st.st_mode & S_ISGID, 0u);
}

TEST_F(FuseEntries, RenameReplacesAndDeletesOldData) {
  ASSERT_TRUE(WriteFile(P("a"), std::string(100000, 'a')));
  ASSERT_TRUE(WriteFile(P("b"), std::string(100000, 'b')));
  size_t before = CountFiles(m_.vol() + "/objects");
  ASSERT_EQ(rename(P("a").c_str(), P("b").c_str()), 0) << strerror(errno);
  EXPECT_EQ(ReadFile(P("b")), std::string(100000, 'a'));
  struct stat st;
  EXPECT_EQ(stat(P("a").c_str(), &st), -1);
  EXPECT_LT(CountFiles(m_.vol() + "/objects"), before);  // b's chunks are gone
  ASSERT_EQ(mkdir(P("d1").c_str(), 0755), 0);
  ASSERT_EQ(rename(P("b").c_str(), P("d1/c").c_str()), 0);
  EXPECT_EQ(ReadFile(P("d1/c")), std::string(100000, 'a'));
}

TEST_F(FuseEntries, RenameNoreplaceAndExchange) {
  ASSERT_TRUE(WriteFile(P("x"), "xxx"));
  ASSERT_TRUE(WriteFile(P("y"), "yy"));
  EXPECT_EQ(renameat2(AT_FDCWD, P("x").c_str(), AT_FDCWD, P("y").c_str(), RENAME_NOREPLACE), -1);
  EXPECT_EQ(errno, EEXIST);
  ASSERT_EQ(renameat2(AT_FDCWD, P("x").c_str(), AT_FDCWD, P("z").c_str(), RENAME_NOREPLACE), 0);
  ASSERT_EQ(mkdir(P("d").c_str(), 0755), 0);
  ASSERT_EQ(renameat2(AT_FDCWD, P("z").c_str(), AT_FDCWD, P("d").c_str(), RENAME_EXCHANGE), 0) << strerror(errno);
  struct stat st;
  ASSERT_EQ(stat(P("z").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(ReadFile(P("d")), "xxx");
  ASSERT_EQ(renameat2(AT_FDCWD, P("d").c_str(), AT_FDCWD, P("y").c_str(), RENAME_EXCHANGE), 0);
  EXPECT_EQ(ReadFile(P("d")), "yy");
  EXPECT_EQ(ReadFile(P("y")), "xxx");
  EXPECT_EQ(renameat2(AT_FDCWD, P("y").c_str(), AT_FDCWD, P("nope").c_str(), RENAME_EXCHANGE), -1);
  EXPECT_EQ(errno, ENOENT);
}

TEST_F(FuseEntries, RenameDirectoryOverEmptyAndNonEmptyDirectory) {
  ASSERT_EQ(mkdir(P("src").c_str(), 0755), 0);
  ASSERT_TRUE(WriteFile(P("src/f"), "in src"));
  ASSERT_EQ(mkdir(P("empty").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(P("full").c_str(), 0755), 0);
  ASSERT_TRUE(WriteFile(P("full/g"), "g"));
  EXPECT_EQ(rename(P("src").c_str(), P("full").c_str()), -1);
  EXPECT_TRUE(errno == ENOTEMPTY || errno == EEXIST);
  ASSERT_EQ(rename(P("src").c_str(), P("empty").c_str()), 0) << strerror(errno);
  EXPECT_EQ(ReadFile(P("empty/f")), "in src");
  EXPECT_EQ(List(P("")), (std::set<std::string>{".", "..", "empty", "full"}));
  ASSERT_TRUE(WriteFile(P("file"), "f"));
  EXPECT_EQ(rename(P("file").c_str(), P("full").c_str()), -1);
  EXPECT_EQ(errno, EISDIR);
}

TEST_F(FuseEntries, HardLinksShareDataAndInode) {
  ASSERT_EQ(mkdir(P("d").c_str(), 0755), 0);
  ASSERT_TRUE(WriteFile(P("a"), "one"));
  ASSERT_EQ(link(P("a").c_str(), P("d/b").c_str()), 0) << strerror(errno);
  struct stat sa, sb;
  ASSERT_EQ(stat(P("a").c_str(), &sa), 0);
  ASSERT_EQ(stat(P("d/b").c_str(), &sb), 0);
  EXPECT_EQ(sa.st_ino, sb.st_ino);
  EXPECT_EQ(sb.st_nlink, 2u);
  int fd = open(P("d/b").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "+two", 4), 4);
  close(fd);
  EXPECT_EQ(ReadFile(P("a")), "one+two");
  size_t before = CountFiles(m_.vol() + "/objects");
  ASSERT_EQ(unlink(P("a").c_str()), 0);
  EXPECT_EQ(ReadFile(P("d/b")), "one+two");
  ASSERT_EQ(stat(P("d/b").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_nlink, 1u);
  ASSERT_EQ(unlink(P("d/b").c_str()), 0);
  EXPECT_LT(CountFiles(m_.vol() + "/objects"), before);
}

TEST_F(FuseEntries, OpenUnlinkedFileKeepsWorkingThenGoes) {
  int fd = open(P("tmp").c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, "data", 4, 0), 4);
  ASSERT_EQ(fsync(fd), 0);  // the writeback cache holds the data until then
  size_t before = CountFiles(m_.vol() + "/objects");
  ASSERT_GT(before, 0u);
  ASSERT_EQ(unlink(P("tmp").c_str()), 0);
  char buf[8] = {};
  EXPECT_EQ(pread(fd, buf, 4, 0), 4);
  EXPECT_EQ(std::string(buf), "data");
  EXPECT_EQ(pwrite(fd, "more", 4, 4), 4);
  close(fd);
  // RELEASE reaches the daemon asynchronously after close().
  for (int i = 0; i < 100 && CountFiles(m_.vol() + "/objects") >= before; ++i) usleep(20000);
  EXPECT_LT(CountFiles(m_.vol() + "/objects"), before);
}

TEST_F(FuseEntries, SymlinksRoundTripAndSurviveMoves) {
  std::string target = "../some/where/target-file";
  ASSERT_EQ(symlink(target.c_str(), P("ln").c_str()), 0) << strerror(errno);
  char buf[256] = {};
  ASSERT_EQ(readlink(P("ln").c_str(), buf, sizeof buf), ssize_t(target.size()));
  EXPECT_EQ(std::string(buf), target);
  struct stat st;
  ASSERT_EQ(lstat(P("ln").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(st.st_size, off_t(target.size()));
  ASSERT_EQ(mkdir(P("d").c_str(), 0755), 0);
  ASSERT_EQ(rename(P("ln").c_str(), P("d/ln2").c_str()), 0);
  ASSERT_EQ(linkat(AT_FDCWD, P("d/ln2").c_str(), AT_FDCWD, P("ln3").c_str(), 0), 0) << strerror(errno);
  for (const char* p : {"d/ln2", "ln3"}) {
    std::fill(buf, buf + sizeof buf, 0);
    ASSERT_EQ(readlink(P(p).c_str(), buf, sizeof buf), ssize_t(target.size())) << p;
    EXPECT_EQ(std::string(buf), target);
  }
  ASSERT_TRUE(WriteFile(P("real"), "pointed at"));
  ASSERT_EQ(symlink("real", P("ln4").c_str()), 0);
  EXPECT_EQ(ReadFile(P("ln4")), "pointed at");
  EXPECT_EQ(lsetxattr(P("ln4").c_str(), "user.x", "1", 1, 0), -1);  // as on ext4
  EXPECT_EQ(errno, EPERM);
}

TEST_F(FuseEntries, FifosAndNoDeviceNodes) {
  ASSERT_EQ(mkfifo(P("fifo").c_str(), 0640), 0) << strerror(errno);
  struct stat st;
  ASSERT_EQ(stat(P("fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  int r = open(P("fifo").c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(r, 0);
  int w = open(P("fifo").c_str(), O_WRONLY | O_NONBLOCK);
  ASSERT_GE(w, 0);
  ASSERT_EQ(write(w, "pipe", 4), 4);
  char buf[8] = {};
  EXPECT_EQ(read(r, buf, sizeof buf), 4);
  close(r);
  close(w);
  EXPECT_EQ(mknod(P("dev").c_str(), S_IFCHR | 0600, makedev(1, 3)), -1);
  EXPECT_EQ(errno, EPERM);
}

TEST_F(FuseEntries, LongNames) {
  std::string a(200, 'a'), b(255, 'b'), c = std::string(230, 'c') + "-moved";
  ASSERT_TRUE(WriteFile(P(a), "long a"));
  ASSERT_EQ(mkdir(P(b).c_str(), 0755), 0) << strerror(errno);
  ASSERT_TRUE(WriteFile(P(b + "/" + a), "nested"));
  EXPECT_EQ(List(P("")), (std::set<std::string>{".", "..", a, b}));
  ASSERT_EQ(rename(P(a).c_str(), P(c).c_str()), 0) << strerror(errno);
  EXPECT_EQ(ReadFile(P(c)), "long a");
  ASSERT_EQ(link(P(c).c_str(), P(b + "/" + c).c_str()), 0) << strerror(errno);
  ASSERT_EQ(symlink("t", P(b + "/" + std::string(240, 's')).c_str()), 0) << strerror(errno);
  EXPECT_EQ(List(P(b)), (std::set<std::string>{".", "..", a, c, std::string(240, 's')}));
  EXPECT_EQ(open(P(std::string(256, 'x')).c_str(), O_CREAT | O_WRONLY, 0600), -1);
  EXPECT_EQ(errno, ENAMETOOLONG);
  ASSERT_TRUE(m_.Remount());
  EXPECT_EQ(ReadFile(P(b + "/" + a)), "nested");
  ASSERT_EQ(unlink(P(c).c_str()), 0);
  ASSERT_EQ(unlink(P(b + "/" + c).c_str()), 0);
  ASSERT_EQ(unlink(P(b + "/" + a).c_str()), 0);
  ASSERT_EQ(unlink(P(b + "/" + std::string(240, 's')).c_str()), 0);
  ASSERT_EQ(rmdir(P(b).c_str()), 0) << strerror(errno);
  EXPECT_EQ(List(P("")), (std::set<std::string>{".", ".."}));
  EXPECT_EQ(List(m_.vol() + "/tree"), (std::set<std::string>{".", "..", ".cfsdir"}));  // no sidecar left
}

TEST_F(FuseEntries, ReaddirListsManyEntries) {
  std::set<std::string> want = {".", ".."};
  for (int i = 0; i < 700; ++i) {
    std::string n = "file-" + std::to_string(i) + std::string(size_t(i % 50), 'z');
    ASSERT_TRUE(WriteFile(P(n), ""));
    want.insert(n);
  }
  EXPECT_EQ(List(P("")), want);
  ASSERT_TRUE(m_.Remount());
  EXPECT_EQ(List(P("")), want);
}

TEST_F(FuseEntries, BackingHoldsNoPlaintextNameOrContent) {
  const std::string marker = "ZyxMarker4711";
  ASSERT_EQ(mkdir(P(marker + "-dir").c_str(), 0755), 0);
  ASSERT_TRUE(WriteFile(P(marker + "-dir/" + marker + "-file"), marker + " data " + marker));
  ASSERT_TRUE(WriteFile(P(std::string(220, 'L') + marker), marker));
  ASSERT_EQ(symlink((marker + "-target").c_str(), P(marker + "-link").c_str()), 0);
  ASSERT_EQ(setxattr(P(marker + "-dir").c_str(), ("user." + marker).c_str(), marker.data(), marker.size(), 0), 0);
  ASSERT_TRUE(m_.Stop());
  EXPECT_FALSE(TreeContains(m_.vol(), marker));
  EXPECT_EQ(fstest::Run("getfattr -R -d -m - " + m_.vol() + " 2>/dev/null | grep -q " + marker), 1);
}

TEST_F(FuseEntries, TamperedNameIsSkippedNotFatal) {
  ASSERT_TRUE(WriteFile(P("good"), "g"));
  ASSERT_TRUE(WriteFile(P("victim"), "v"));
  ASSERT_TRUE(m_.Stop());
  // Flip the first character of the victim's stored name.
  std::string victim;
  for (const auto& e : fsys::directory_iterator(m_.vol() + "/tree")) {
    std::string n = e.path().filename();
    if (n[0] != '.' && e.is_regular_file()) victim = n;  // either; both are regular files
  }
  ASSERT_FALSE(victim.empty());
  std::string bad = victim;
  bad[0] = bad[0] == 'A' ? 'B' : 'A';
  fsys::rename(m_.vol() + "/tree/" + victim, m_.vol() + "/tree/" + bad);
  ASSERT_TRUE(m_.Remount());
  std::set<std::string> seen = List(P(""));
  EXPECT_EQ(seen.size(), 3u);  // ".", "..", and the untouched file
  EXPECT_TRUE(seen.count("good") + seen.count("victim") == 1);
}

}  // namespace
}  // namespace cfs::fstest
