#include "common/status.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "common/result.h"
#include "common/secret_bytes.h"

namespace cfs {
namespace {

TEST(Status, OkHasNoErrno) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.sys_errno(), 0);
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(Status, FromErrnoKeepsExactErrno) {
  Status s = Status::FromErrno(ENOSPC, "pwrite chunk");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kIoError);
  EXPECT_EQ(s.sys_errno(), ENOSPC);
  EXPECT_NE(s.message().find("pwrite chunk"), std::string::npos);
  EXPECT_EQ(Status::FromErrno(ENOENT, "x").code(), Code::kNotFound);
}

TEST(Status, DataLossMapsToEio) { EXPECT_EQ(DataLoss("bad tag").sys_errno(), EIO); }

Result<int> Half(int x) {
  if (x % 2) return InvalidArgument("odd");
  return x / 2;
}

Status UseHalf(int x, int* out) {
  CFS_ASSIGN_OR_RETURN(*out, Half(x));
  return Status::Ok();
}

TEST(Result, AssignOrReturnPropagates) {
  int v = 0;
  EXPECT_TRUE(UseHalf(4, &v).ok());
  EXPECT_EQ(v, 2);
  EXPECT_EQ(UseHalf(3, &v).code(), Code::kInvalidArgument);
}

TEST(SecretBytes, MoveLeavesSourceEmptyAndEqualsIsExact) {
  uint8_t raw[4] = {1, 2, 3, 4};
  SecretBytes a(raw, 4);
  SecretBytes b = a.Clone();
  EXPECT_TRUE(a.Equals(b));
  SecretBytes c = std::move(a);
  EXPECT_TRUE(a.empty());
  EXPECT_TRUE(c.Equals(b));
  b.UnsafeData()[3] = 5;
  EXPECT_FALSE(c.Equals(b));
  c.Wipe();
  EXPECT_TRUE(c.empty());
}

}  // namespace
}  // namespace cfs
