// FaultFileTest: one file of a fresh StoreVolume (chunk_blocks 16), opened
// through a FaultBacking over PosixBacking, so that a test can count the
// store's flushes, inject faults, or ask what is not durable yet.
// Parameter: encrypted. Thread safety: as StoreVolume.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "store/backing.h"
#include "store/data_store.h"
#include "store_fixture.h"
#include "support/fault_backing.h"

namespace cfs::test {

class FaultFileTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    vol_ = std::make_unique<StoreVolume>(GetParam(), 16);
    auto ds = vol_->Open(&fb_);
    ASSERT_TRUE(ds.ok()) << ds.status().ToString();
    ds_ = std::move(ds).value();
    auto f = vol_->CreateFile(&fb_, ds_.get(), 0);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    f_ = std::move(f).value();
  }
  void TearDown() override {
    f_.reset();
    if (ds_) {
      EXPECT_TRUE(ds_->CloseClean().ok());
    }
  }
  uint64_t Fsyncs() const { return fb_.calls(OpKind::kFsync); }

  store::PosixBacking posix_;
  FaultBacking fb_{&posix_};
  std::unique_ptr<StoreVolume> vol_;
  std::unique_ptr<store::DataStore> ds_;
  std::shared_ptr<store::FileData> f_;
};

inline std::string EncryptedName(const ::testing::TestParamInfo<bool>& i) {
  return i.param ? "Encrypted" : "Plain";
}

}  // namespace cfs::test
