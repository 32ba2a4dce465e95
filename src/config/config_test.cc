#include "config/config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace cfs::config {
namespace {

TEST(ConfigTest, EmptyTextGivesDefaults) {
  auto c = ParseConfig("", "c.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->default_region, "local-1");
  EXPECT_FALSE(c->mount.allow_other);
  EXPECT_EQ(c->mount.threads, 16u);
  EXPECT_EQ(c->mount.key_check_interval, std::chrono::seconds(30));
}

TEST(ConfigTest, ParsesAllKeys) {
  auto c = ParseConfig(R"(version: 1
default_region: eu-west-2
regions:
  eu-west-2:
    path: /mnt/disk2/eu
mount:
  allow_other: true
  threads: 8
  key_check_interval: 500ms
  options: [noatime, nodev]
)", "c.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->default_region, "eu-west-2");
  EXPECT_EQ(c->region_paths.at("eu-west-2"), "/mnt/disk2/eu");
  EXPECT_TRUE(c->mount.allow_other);
  EXPECT_EQ(c->mount.threads, 8u);
  EXPECT_EQ(c->mount.key_check_interval, std::chrono::milliseconds(500));
  EXPECT_EQ(c->mount.fuse_options, (std::vector<std::string>{"noatime", "nodev"}));
  c->home = "/h";
  EXPECT_EQ(c->RegionDir("eu-west-2"), "/mnt/disk2/eu");
  EXPECT_EQ(c->RegionDir("us-east-1"), "/h/regions/us-east-1");
}

void ExpectError(const std::string& text, const std::string& fragment) {
  auto c = ParseConfig(text, "cfg.yaml");
  ASSERT_FALSE(c.ok()) << text;
  EXPECT_EQ(c.status().code(), Code::kInvalidArgument);
  EXPECT_NE(c.status().message().find(fragment), std::string::npos) << c.status().message();
}

TEST(ConfigTest, ErrorsNameFileLineAndKey) {
  ExpectError("default_region: local-1\nmount:\n  threads: lots\n", "cfg.yaml:3:12: mount.threads: must be an integer");
  ExpectError("mount:\n  alow_other: true\n", "cfg.yaml:2:3: mount.alow_other: unknown key");
  ExpectError("default_region: Bad_Region\n", "cfg.yaml:1:17: default_region:");
  ExpectError("regions:\n  r1:\n    path: relative/dir\n", "regions.r1.path: must be an absolute path");
  ExpectError("mount:\n  key_check_interval: 10h30\n", "mount.key_check_interval");
  ExpectError("mount:\n  allow_other: yes please\n", "mount.allow_other: must be true or false");
  ExpectError("version: 2\n", "config version 2 is newer");
  ExpectError("[1, 2]\n", "must be a mapping");
  ExpectError("a: [unclosed\n", "not valid YAML");
  ExpectError("mount: 3\n", "mount: must be a mapping");
}

TEST(ConfigTest, RegionNames) {
  EXPECT_TRUE(IsValidRegionName("local-1"));
  EXPECT_TRUE(IsValidRegionName("us-east-1"));
  EXPECT_FALSE(IsValidRegionName(""));
  EXPECT_FALSE(IsValidRegionName("1abc"));
  EXPECT_FALSE(IsValidRegionName("abc-"));
  EXPECT_FALSE(IsValidRegionName("a/b"));
  EXPECT_FALSE(IsValidRegionName("../x"));
  EXPECT_FALSE(IsValidRegionName(std::string(64, 'a')));
}

class LoadConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("cfgtest-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(LoadConfigTest, MissingFileMeansDefaultsAndPrecedenceIsFlagEnvFile) {
  Overrides o;
  o.home = dir_.string();
  auto c = LoadConfig(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->region, "local-1");
  EXPECT_EQ(c->home, dir_.string());
  EXPECT_TRUE(c->config_file.empty());
  std::ofstream(dir_ / "config.yaml") << "default_region: from-file\n";
  c = LoadConfig(o);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->region, "from-file");
  o.env_region = "from-env";
  EXPECT_EQ(LoadConfig(o)->region, "from-env");
  o.flag_region = "from-flag";
  EXPECT_EQ(LoadConfig(o)->region, "from-flag");
  o.flag_region = "Not/Valid";
  EXPECT_EQ(LoadConfig(o).status().code(), Code::kInvalidArgument);
}

TEST_F(LoadConfigTest, ExplicitMissingConfigIsAnError) {
  Overrides o;
  o.home = dir_.string();
  o.config_path = (dir_ / "nope.yaml").string();
  EXPECT_EQ(LoadConfig(o).status().code(), Code::kNotFound);
  o.config_path.reset();
  o.home = "relative/home";
  EXPECT_EQ(LoadConfig(o).status().code(), Code::kInvalidArgument);
}

TEST(ConfigTest, DefaultHomeDependsOnUser) {
  EXPECT_EQ(DefaultHome(0), "/var/lib/cipherfs");
  EXPECT_NE(DefaultHome(1000).find("/.local/share/cipherfs"), std::string::npos);
}

TEST(ConfigTest, AccountIdIsTwelveStableDigits) {
  std::string a = AccountIdForHome("/var/lib/cipherfs");
  EXPECT_EQ(a.size(), 12u);
  EXPECT_EQ(a.find_first_not_of("0123456789"), std::string::npos);
  EXPECT_EQ(a, AccountIdForHome("/var/lib/cipherfs"));
  EXPECT_NE(a, AccountIdForHome("/home/u/.local/share/cipherfs"));
}

}  // namespace
}  // namespace cfs::config
