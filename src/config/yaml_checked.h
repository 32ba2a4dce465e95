// Checked access to parsed YAML for config/ only (yaml-cpp stays inside
// config/): every failure is an InvalidArgument naming the file, the line and
// column (1-based, from yaml-cpp's Mark) and the dotted key.
// Thread safety: a YamlReader is used by one thread.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "common/result.h"

namespace cfs::config {

class YamlReader {
 public:
  explicit YamlReader(std::string file_name) : file_(std::move(file_name)) {}

  // Parses a whole document; the root must be a mapping (or empty when
  // `allow_empty`, giving a null node).
  Result<YAML::Node> Parse(std::string_view text, bool allow_empty) const;

  // "FILE:LINE:COL: KEY: problem" (position omitted when unknown).
  Status Error(const YAML::Node& node, std::string_view key, std::string_view problem) const;

  // Fails on any key of `map` (a mapping) not in `allowed`, or a non-scalar key.
  Status CheckKeys(const YAML::Node& map, std::string_view prefix, const std::set<std::string>& allowed) const;
  Status ExpectMap(const YAML::Node& node, std::string_view key) const;

  Result<std::string> String(const YAML::Node& node, std::string_view key) const;
  Result<bool> Bool(const YAML::Node& node, std::string_view key) const;
  // A decimal integer in [min, max].
  Result<uint64_t> Uint(const YAML::Node& node, std::string_view key, uint64_t min, uint64_t max) const;

  const std::string& file() const { return file_; }

 private:
  std::string file_;
};

// Scalar text of a node that is known to be a scalar.
inline std::string ScalarText(const YAML::Node& node) { return node.Scalar(); }

}  // namespace cfs::config
