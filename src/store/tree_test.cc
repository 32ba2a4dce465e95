// Tree tests on a real temporary directory: directory ids, create/remove
// of directories (never visible without an id), long names and their
// sidecars, listing with tampered entries, xattrs.
#include "store/tree.h"

#include <gtest/gtest.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include "crypto/random.h"
#include "store/volume.h"

namespace cfs::store {
namespace {

namespace fsys = std::filesystem;

class TreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cfs-tree-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    data_key_ = crypto::RandomSecret(32);
    ASSERT_TRUE(CreateVolumeLayout(&backing_, dir_, &data_key_, {}).ok());
    keys_ = std::move(VolumeKeys::Derive(data_key_)).value();
    tree_ = std::make_unique<Tree>(&backing_, std::move(NameCodec::CreateEncrypted(keys_.get(), data_key_)).value());
    auto fd = backing_.OpenAt(AT_FDCWD, dir_ + "/tree", O_PATH | O_DIRECTORY, 0);
    ASSERT_TRUE(fd.ok());
    root_ = *fd;
    auto id = tree_->ReadDirId(root_);
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    root_id_ = *id;
  }
  void TearDown() override {
    static_cast<void>(backing_.Close(root_));
    fsys::remove_all(dir_);
  }
  std::vector<std::string> Names(int fd, const DirId& id) {
    auto list = tree_->List(fd, id);
    EXPECT_TRUE(list.ok());
    std::vector<std::string> out;
    for (auto& e : *list) out.push_back(e.name);
    std::sort(out.begin(), out.end());
    return out;
  }
  std::vector<std::string> HostNames(const std::string& rel) {
    std::vector<std::string> out;
    for (auto& e : fsys::directory_iterator(dir_ + "/tree/" + rel)) out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
  }

  PosixBacking backing_;
  std::string dir_;
  SecretBytes data_key_;
  std::unique_ptr<VolumeKeys> keys_;
  std::unique_ptr<Tree> tree_;
  int root_ = -1;
  DirId root_id_{};
};

TEST_F(TreeTest, NewVolumeHasRootIdAndObjects) {
  EXPECT_TRUE(fsys::is_directory(dir_ + "/objects"));
  EXPECT_EQ(fsys::file_size(dir_ + "/tree/.cfsdir"), 16u);
  EXPECT_FALSE(CreateVolumeLayout(&backing_, dir_, &data_key_, {}).ok());  // never over an existing one
}

TEST_F(TreeTest, MakeDirectoryIsVisibleOnlyWithItsId) {
  auto host = tree_->MakeDirectory(root_, root_id_, "base", 02750, {});
  ASSERT_TRUE(host.ok()) << host.status().ToString();
  // The id is the host directory's attribute (no .cfsdir, no fsync).
  const std::string path = dir_ + "/tree/" + *host;
  uint8_t id[17];
  EXPECT_EQ(getxattr(path.c_str(), std::string(kDirIdXattr).c_str(), id, sizeof(id)), 16);
  EXPECT_FALSE(fsys::exists(path + "/.cfsdir"));
  EXPECT_EQ(fsys::status(path).permissions(), fsys::perms(0750) | fsys::perms::set_gid);
  std::vector<std::string> want = {".cfsdir", *host};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(HostNames(""), want);  // no temp left
  EXPECT_EQ(Names(root_, root_id_), std::vector<std::string>{"base"});
  auto again = tree_->MakeDirectory(root_, root_id_, "base", 0755, {});
  EXPECT_EQ(again.status().sys_errno(), EEXIST);
  EXPECT_EQ(HostNames("").size(), 2u);  // the failed attempt left nothing
}

TEST_F(TreeTest, DirectoryIdFromAttributeOrFile) {
  auto host = tree_->MakeDirectory(root_, root_id_, "d", 0755, {});
  ASSERT_TRUE(host.ok());
  const std::string path = dir_ + "/tree/" + *host;
  const std::string xname(kDirIdXattr);
  int dfd = *backing_.OpenAt(root_, *host, O_PATH | O_DIRECTORY, 0);
  auto made = tree_->ReadDirId(dfd);
  ASSERT_TRUE(made.ok());
  EXPECT_NE(*made, root_id_);
  // The id never shows among the user's attributes.
  EXPECT_EQ(*tree_->ListXattr(dfd), "");
  // A directory of a volume made before the attribute: its .cfsdir counts.
  ASSERT_EQ(removexattr(path.c_str(), xname.c_str()), 0);
  EXPECT_EQ(tree_->ReadDirId(dfd).status().code(), Code::kDataLoss);  // neither: EIO
  DirId old = crypto::RandomArray<16>();
  {
    int f = open((path + "/.cfsdir").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0400);
    ASSERT_GE(f, 0);
    ASSERT_EQ(write(f, old.data(), old.size()), 16);
    close(f);
  }
  EXPECT_EQ(*tree_->ReadDirId(dfd), old);
  // A malformed attribute is EIO, never a fallback to the file.
  for (size_t len : {size_t{15}, size_t{17}, size_t{0}}) {
    std::vector<uint8_t> v(len, 7);
    ASSERT_EQ(setxattr(path.c_str(), xname.c_str(), v.data(), v.size(), 0), 0);
    auto bad = tree_->ReadDirId(dfd);
    EXPECT_EQ(bad.status().code(), Code::kDataLoss) << len;
    EXPECT_EQ(bad.status().sys_errno(), EIO) << len;
  }
  static_cast<void>(backing_.Close(dfd));
}

TEST_F(TreeTest, RemoveDirectoryRefusesUserEntriesAndCleansUp) {
  auto host = tree_->MakeDirectory(root_, root_id_, "d", 0755, {});
  ASSERT_TRUE(host.ok());
  int dfd = *backing_.OpenAt(root_, *host, O_PATH | O_DIRECTORY, 0);
  DirId id = *tree_->ReadDirId(dfd);
  auto child = tree_->MakeSymlink(dfd, id, "ln", "target", {});
  ASSERT_TRUE(child.ok());
  EXPECT_EQ(tree_->RemoveDirectory(root_, *host).sys_errno(), ENOTEMPTY);
  ASSERT_TRUE(backing_.UnlinkAt(dfd, *child, 0).ok());
  static_cast<void>(backing_.Close(dfd));
  ASSERT_TRUE(tree_->RemoveDirectory(root_, *host).ok());
  EXPECT_EQ(HostNames(""), std::vector<std::string>{".cfsdir"});
}

TEST_F(TreeTest, LongNameSidecarLifecycle) {
  std::string name(240, 'L');
  auto host = tree_->PrepareName(root_, root_id_, name);
  ASSERT_TRUE(host.ok());
  EXPECT_TRUE(IsLongHostName(*host));
  ASSERT_TRUE(backing_.MknodAt(root_, *host, S_IFIFO | 0600, 0).ok());
  EXPECT_EQ(Names(root_, root_id_), std::vector<std::string>{name});
  EXPECT_EQ(*tree_->HostName(root_id_, name), *host);
  tree_->ReleaseName(root_, *host);  // entry still there: sidecar stays
  EXPECT_EQ(HostNames("").size(), 3u);
  ASSERT_TRUE(backing_.UnlinkAt(root_, *host, 0).ok());
  tree_->ReleaseName(root_, *host);
  EXPECT_EQ(HostNames(""), std::vector<std::string>{".cfsdir"});
}

TEST_F(TreeTest, ListSkipsTamperedAndReservedEntries) {
  auto good = tree_->PrepareName(root_, root_id_, "good");
  auto bad = tree_->PrepareName(root_, root_id_, std::string(240, 'b'));
  ASSERT_TRUE(backing_.MknodAt(root_, *good, S_IFIFO | 0600, 0).ok());
  ASSERT_TRUE(backing_.MknodAt(root_, *bad, S_IFIFO | 0600, 0).ok());
  ASSERT_TRUE(backing_.MknodAt(root_, "AAAAAAAAAAAAAAAAAAAAAAAAAAAA", S_IFIFO | 0600, 0).ok());  // never encrypted
  ASSERT_TRUE(backing_.MknodAt(root_, ".cfstmp.0011", S_IFIFO | 0600, 0).ok());
  // A long entry whose sidecar was swapped for another name's.
  std::string side = dir_ + "/tree/" + SidecarName(*bad);
  ASSERT_TRUE(truncate(side.c_str(), 10) == 0);
  EXPECT_EQ(Names(root_, root_id_), std::vector<std::string>{"good"});
}

TEST_F(TreeTest, SymlinkAndXattrsRoundTrip) {
  auto host = tree_->MakeSymlink(root_, root_id_, "ln", "../target", {});
  ASSERT_TRUE(host.ok());
  int lfd = *backing_.OpenAt(root_, *host, O_PATH | O_NOFOLLOW, 0);
  EXPECT_EQ(*tree_->ReadSymlink(lfd), "../target");
  static_cast<void>(backing_.Close(lfd));
  auto dir = tree_->MakeDirectory(root_, root_id_, "x", 0755, {});
  int dfd = *backing_.OpenAt(root_, *dir, O_PATH | O_DIRECTORY, 0);
  std::string v = "v1";
  ASSERT_TRUE(tree_->SetXattr(dfd, "user.k", AsBytes(v), 0).ok());
  char buf[16];
  EXPECT_EQ(*tree_->GetXattr(dfd, "user.k", nullptr, 0), 2u);
  EXPECT_EQ(*tree_->GetXattr(dfd, "user.k", buf, sizeof buf), 2u);
  EXPECT_EQ(tree_->GetXattr(dfd, "user.k", buf, 1).status().sys_errno(), ERANGE);
  EXPECT_EQ(tree_->GetXattr(dfd, "user.none", buf, sizeof buf).status().sys_errno(), ENODATA);
  EXPECT_EQ(*tree_->ListXattr(dfd), std::string("user.k", 7));
  ASSERT_TRUE(tree_->RemoveXattr(dfd, "user.k").ok());
  EXPECT_EQ(*tree_->ListXattr(dfd), "");
  static_cast<void>(backing_.Close(dfd));
}

}  // namespace
}  // namespace cfs::store
