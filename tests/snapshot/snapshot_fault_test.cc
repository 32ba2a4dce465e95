// Fault-injection sweep over snapshot creation: the Nth backing call fails
// (once, or the disk dies for good); afterwards there is either no snapshot
// (and no staging folder) or a whole one with the source's contents, and the
// source is intact.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "crypto/random.h"
#include "snapshot/snapshot.h"
#include "store/data_store.h"
#include "store/volume.h"
#include "support/fault_backing.h"

namespace cfs::snapshot {
namespace {

namespace fsys = std::filesystem;

Status WriteFile(store::Backing* b, const std::string& vol, const store::VolumeKeys* keys, const std::string& name,
                 const Bytes& data) {
  int vfd = ::open(vol.c_str(), O_RDONLY | O_DIRECTORY);
  store::DataStoreOptions o;
  o.chunk_blocks = 16;
  CFS_ASSIGN_OR_RETURN(auto ds, store::DataStore::Open(b, vfd, keys, o));
  int fd = ::open((vol + "/tree/" + name).c_str(), O_RDWR | O_CREAT, 0600);
  CFS_RETURN_IF_ERROR(ds->InitInodeFile(fd));
  CFS_ASSIGN_OR_RETURN(auto f, ds->OpenFile(fd));
  CFS_RETURN_IF_ERROR(f->Write(0, ByteView(data.data(), data.size())).status());
  f.reset();
  ::close(fd);
  Status s = ds->CloseClean();
  ds.reset();
  ::close(vfd);
  return s;
}

Result<Bytes> ReadFile(store::Backing* b, const std::string& vol, const store::VolumeKeys* keys,
                       const std::string& name) {
  int vfd = ::open(vol.c_str(), O_RDONLY | O_DIRECTORY);
  store::DataStoreOptions o;
  o.chunk_blocks = 16;
  o.read_only = true;
  auto ds = store::DataStore::Open(b, vfd, keys, o);
  if (!ds.ok()) {
    ::close(vfd);
    return ds.status();
  }
  int fd = ::open((vol + "/tree/" + name).c_str(), O_RDONLY);
  Bytes out;
  Status s = [&]() -> Status {
    CFS_ASSIGN_OR_RETURN(auto f, (*ds)->OpenFile(fd));
    out.resize(f->size());
    return f->Read(0, out.size(), out.data()).status();
  }();
  ::close(fd);
  ds->reset();
  ::close(vfd);
  CFS_RETURN_IF_ERROR(s);
  return out;
}

class SnapshotFaultTest : public ::testing::TestWithParam<bool> {};

TEST_P(SnapshotFaultTest, FailedCallLeavesNoSnapshotOrAWholeOneAndTheSourceIntact) {
  const bool die = GetParam();
  std::string tmpl = (fsys::temp_directory_path() / "cfs-snapfault-XXXXXX").string();
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const std::string root = tmpl, src = root + "/src", snaps = root + "/snapshots";
  ASSERT_EQ(::mkdir(src.c_str(), 0700), 0);
  ASSERT_EQ(::mkdir(snaps.c_str(), 0700), 0);
  store::PosixBacking posix;
  SecretBytes key = crypto::RandomSecret(32);
  store::VolumeOptions vo;
  vo.chunk_blocks = 16;
  ASSERT_TRUE(store::CreateVolumeLayout(&posix, src, &key, vo).ok());
  auto keys = std::move(store::VolumeKeys::Derive(key)).value();
  Bytes a(150000), b(3000);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<uint8_t>(i * 7);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(i * 13);
  ASSERT_TRUE(WriteFile(&posix, src, keys.get(), "a", a).ok());
  ASSERT_TRUE(WriteFile(&posix, src, keys.get(), "b", b).ok());
  ASSERT_EQ(::mkdir((src + "/tree/d").c_str(), 0700), 0);
  config::VolumeDescriptor d;
  d.kind = config::VolumeKind::kSnapshot;
  d.id = "s1";
  d.region = "r1";
  d.arn = "arn:cipherfs:rds:r1:123456789012:cluster-snapshot:s1";
  d.created_at = config::NowRfc3339();
  d.lineage.push_back({kRelManualSnapshot, "arn:cipherfs:rds:r1:123456789012:cluster:src", d.created_at});
  int failures = 0, successes_after_fault = 0;
  for (uint64_t n = 1; n < 10000; ++n) {
    test::FaultBacking fb(&posix);
    fb.FailNth(test::OpKind::kAny, n, EIO, die);
    Status s = CreateCowVolume(&fb, src, snaps, d, nullptr, nullptr);
    bool injected = fb.faults_injected() > 0;
    if (s.ok()) {
      auto sa = ReadFile(&posix, snaps + "/s1", keys.get(), "a");
      auto sb = ReadFile(&posix, snaps + "/s1", keys.get(), "b");
      ASSERT_TRUE(sa.ok() && sb.ok()) << "n=" << n;
      EXPECT_EQ(*sa, a) << "n=" << n;
      EXPECT_EQ(*sb, b) << "n=" << n;
      EXPECT_TRUE(fsys::is_directory(snaps + "/s1/tree/d")) << "n=" << n;
      ASSERT_TRUE(DeleteVolume(snaps, "s1").ok());
      if (!injected) break;  // past the last call: the sweep is complete
      ++successes_after_fault;
    } else {
      ++failures;
      ASSERT_TRUE(injected) << "n=" << n << ": " << s.ToString();
    }
    size_t left = 0;
    for (auto it = fsys::directory_iterator(snaps); it != fsys::directory_iterator(); ++it) ++left;
    ASSERT_EQ(left, 0u) << "n=" << n << ": a failed create left something (" << fb.last_fault() << ")";
    auto ra = ReadFile(&posix, src, keys.get(), "a");
    ASSERT_TRUE(ra.ok()) << "n=" << n;
    ASSERT_EQ(*ra, a) << "n=" << n;
  }
  std::printf("%d failing points, %d tolerated\n", failures, successes_after_fault);
  EXPECT_GT(failures, 20);
  for (const auto& e : fsys::recursive_directory_iterator(src + "/objects")) {
    if (e.is_regular_file()) {
      EXPECT_EQ(fsys::hard_link_count(e.path()), 1u) << "a chunk kept an extra link";
    }
  }
  fsys::remove_all(root);
}

INSTANTIATE_TEST_SUITE_P(Mode, SnapshotFaultTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "DiskDies" : "OneCallFails"; });

}  // namespace
}  // namespace cfs::snapshot
