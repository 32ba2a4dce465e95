#include "snapshot/backup_policy.h"

#include <gtest/gtest.h>

#include "config/volume_yaml.h"

namespace cfs::snapshot {
namespace {

int64_t At(const char* rfc3339) { return ParseRfc3339Utc(rfc3339).value(); }

TEST(BackupPolicy, WindowParsesAndFormats) {
  auto w = ParseBackupWindow("03:00-03:30");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->start_min, 180);
  EXPECT_EQ(w->end_min, 210);
  EXPECT_EQ(FormatBackupWindow(*w), "03:00-03:30");
  auto wrap = ParseBackupWindow("23:45-00:30");
  ASSERT_TRUE(wrap.ok());
  EXPECT_EQ(wrap->LengthMinutes(), 45);
}

TEST(BackupPolicy, WindowRefusesMalformedOrShort) {
  for (const char* bad : {"", "3:00-3:30", "03:00", "03:00-03:29", "24:00-00:30", "03:60-04:30", "03:00-03:00",
                          "03:00-03:30x", "-03:00-03:30", "aa:bb-cc:dd"}) {
    EXPECT_EQ(ParseBackupWindow(bad).status().code(), Code::kInvalidArgument) << bad;
  }
}

TEST(BackupPolicy, RetentionRules) {
  EXPECT_TRUE(ValidateRetention(1, true).ok());
  EXPECT_TRUE(ValidateRetention(35, true).ok());
  EXPECT_TRUE(ValidateRetention(0, false).ok());
  EXPECT_EQ(ValidateRetention(0, true).code(), Code::kFailedPrecondition);
  EXPECT_EQ(ValidateRetention(36, false).code(), Code::kInvalidArgument);
  EXPECT_EQ(ValidateRetention(-1, false).code(), Code::kInvalidArgument);
}

TEST(BackupPolicy, FileRoundTripsAndRejectsTampering) {
  BackupPolicy p{7, BackupWindow{60, 120}};
  auto back = ParseBackupPolicy(FormatBackupPolicy(p), "f");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, p);
  for (const char* bad : {"retention_days: 7\n", "retention_days: 36\nwindow: 01:00-02:00\n",
                          "retention_days: 7\nwindow: 01:00-02:00", "retention_days: 7\nwindow: 01:00-01:10\n",
                          "retention_days: 7\nretention_days: 7\nwindow: 01:00-02:00\n",
                          "retention_days: -1\nwindow: 01:00-02:00\n", "x: 1\n", "retention_days: 99999999999\n"}) {
    EXPECT_EQ(ParseBackupPolicy(bad, "f").status().code(), Code::kDataLoss) << bad;
  }
}

TEST(BackupPolicy, DefaultWindowIsStableHalfHourAtNight) {
  BackupWindow a = DefaultBackupWindow("orders");
  EXPECT_EQ(a, DefaultBackupWindow("orders"));
  EXPECT_EQ(a.LengthMinutes(), 30);
  EXPECT_LE(a.start_min, 7 * 60 + 30);
}

TEST(BackupPolicy, DueInsideTheWindowOncePerDay) {
  BackupPolicy p{1, BackupWindow{180, 210}};  // 03:00-03:30
  std::vector<AutomatedBackup> taken;
  EXPECT_TRUE(BackupDue(p, taken, At("2026-01-02T12:00:00Z")));  // first backup: at once
  taken.push_back({"a", At("2026-01-02T12:00:00Z")});
  EXPECT_FALSE(BackupDue(p, taken, At("2026-01-02T18:00:00Z")));
  EXPECT_FALSE(BackupDue(p, taken, At("2026-01-03T02:59:59Z")));
  EXPECT_TRUE(BackupDue(p, taken, At("2026-01-03T03:00:00Z")));
  taken.push_back({"b", At("2026-01-03T03:00:05Z")});
  EXPECT_FALSE(BackupDue(p, taken, At("2026-01-03T03:10:00Z")));
  EXPECT_FALSE(BackupDue(p, taken, At("2026-01-04T02:00:00Z")));
  // The window of the 4th missed (host off): caught up once past a day and a window.
  EXPECT_FALSE(BackupDue(p, taken, At("2026-01-04T03:30:05Z")));
  EXPECT_TRUE(BackupDue(p, taken, At("2026-01-04T03:30:06Z")));
}

TEST(BackupPolicy, WindowAcrossMidnight) {
  BackupPolicy p{1, BackupWindow{23 * 60 + 45, 30}};
  std::vector<AutomatedBackup> taken{{"a", At("2026-01-02T23:50:00Z")}};
  EXPECT_TRUE(InBackupWindow(p.window, At("2026-01-03T00:10:00Z")));
  EXPECT_FALSE(BackupDue(p, taken, At("2026-01-03T00:10:00Z")));
  EXPECT_TRUE(BackupDue(p, taken, At("2026-01-03T23:46:00Z")));
  EXPECT_FALSE(InBackupWindow(p.window, At("2026-01-03T00:30:00Z")));
}

TEST(BackupPolicy, RetentionZeroMeansNeverDueAndAllExpired) {
  BackupPolicy p{0, BackupWindow{0, 30}};
  std::vector<AutomatedBackup> taken{{"a", At("2026-01-02T00:00:00Z")}};
  EXPECT_FALSE(BackupDue(p, {}, At("2026-01-02T00:10:00Z")));
  EXPECT_EQ(ExpiredBackups(p, taken, At("2026-01-02T00:10:00Z")), std::vector<std::string>{"a"});
}

TEST(BackupPolicy, ExpiresPastRetentionOldestFirst) {
  BackupPolicy p{2, BackupWindow{0, 30}};
  std::vector<AutomatedBackup> taken{{"c", At("2026-01-03T00:00:00Z")},
                                     {"a", At("2026-01-01T00:00:00Z")},
                                     {"b", At("2026-01-02T00:00:00Z")}};
  EXPECT_TRUE(ExpiredBackups(p, taken, At("2026-01-02T23:59:59Z")).empty());
  EXPECT_EQ(ExpiredBackups(p, taken, At("2026-01-03T00:00:00Z")), std::vector<std::string>{"a"});
  EXPECT_EQ(ExpiredBackups(p, taken, At("2026-01-04T12:00:00Z")), (std::vector<std::string>{"a", "b"}));
}

TEST(BackupPolicy, AutomatedIdsAreValidAndUnique) {
  int64_t t = At("2026-01-02T03:04:05Z");
  std::string id = AutomatedSnapshotId("orders", t, {});
  EXPECT_EQ(id, "auto-orders-2026-01-02-03-04");
  EXPECT_EQ(AutomatedSnapshotId("orders", t, {{id, t}}), id + "-2");
  std::string longest(63, 'a');
  longest[30] = '-';
  std::string l = AutomatedSnapshotId(longest, t, {});
  EXPECT_TRUE(config::IsValidVolumeId(l)) << l;
  EXPECT_TRUE(config::IsValidVolumeId(AutomatedSnapshotId(longest, t, {{l, t}})));
}

TEST(BackupPolicy, ParsesRfc3339) {
  EXPECT_EQ(At("1970-01-02T00:00:00Z"), 86400);
  EXPECT_FALSE(ParseRfc3339Utc("2026-01-02 03:04:05Z").ok());
  EXPECT_FALSE(ParseRfc3339Utc("2026-13-02T03:04:05Z").ok());
}

}  // namespace
}  // namespace cfs::snapshot
