// Regression test for a finding of names_fuzz (see the commit message):
// on an UNENCRYPTED volume, Tree::ReleaseName treats a user's own entry
// named ".cfsL.<x>" as a long name and unlinks the user's file ".cfsN.<x>".
// Rename to tree_plain_names_test.cc together with the fix in tree.cc
// (ReleaseName: return early when !encrypted()); it fails before the fix.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "store/names.h"
#include "store/tree.h"

namespace cfs::store {
namespace {

TEST(TreePlainNamesTest, ReleaseNameKeepsUserFileThatLooksLikeASidecar) {
  char tmpl[] = "/tmp/cfs-tree-plain-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  PosixBacking backing;
  Tree tree(&backing, NameCodec::CreatePlain());
  int dirfd = open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(dirfd, 0);
  for (const char* name : {".cfsL.x", ".cfsN.x"}) {  // two ordinary user files
    int fd = openat(dirfd, name, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    close(fd);
  }
  ASSERT_EQ(unlinkat(dirfd, ".cfsL.x", 0), 0);  // the user removes one of them
  tree.ReleaseName(dirfd, ".cfsL.x");
  EXPECT_EQ(faccessat(dirfd, ".cfsN.x", F_OK, 0), 0) << "the user's .cfsN.x was deleted";
  close(dirfd);
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace cfs::store
