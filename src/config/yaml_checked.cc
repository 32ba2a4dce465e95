#include "config/yaml_checked.h"

#include <fmt/format.h>

#include <charconv>

namespace cfs::config {

Result<YAML::Node> YamlReader::Parse(std::string_view text, bool allow_empty) const {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return InvalidArgument(fmt::format("{}:{}:{}: not valid YAML: {}", file_, e.mark.line + 1,
                                       e.mark.column + 1, e.msg));
  }
  if (root.IsNull() && allow_empty) return root;
  if (!root.IsMap()) return Error(root, "", "the document must be a mapping of keys to values");
  return root;
}

Status YamlReader::Error(const YAML::Node& node, std::string_view key, std::string_view problem) const {
  std::string where = file_;
  YAML::Mark mark = node.IsDefined() ? node.Mark() : YAML::Mark::null_mark();
  if (mark.line >= 0) where += fmt::format(":{}:{}", mark.line + 1, mark.column + 1);
  if (key.empty()) return InvalidArgument(fmt::format("{}: {}", where, problem));
  return InvalidArgument(fmt::format("{}: {}: {}", where, key, problem));
}

Status YamlReader::ExpectMap(const YAML::Node& node, std::string_view key) const {
  if (!node.IsMap()) return Error(node, key, "must be a mapping");
  return Status::Ok();
}

Status YamlReader::CheckKeys(const YAML::Node& map, std::string_view prefix,
                             const std::set<std::string>& allowed) const {
  CFS_RETURN_IF_ERROR(ExpectMap(map, prefix.empty() ? "(top level)" : prefix));
  std::set<std::string> seen;
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) return Error(kv.first, prefix, "keys must be plain strings");
    std::string name = kv.first.Scalar();
    std::string full = prefix.empty() ? name : fmt::format("{}.{}", prefix, name);
    if (!allowed.count(name)) return Error(kv.first, full, "unknown key");
    if (!seen.insert(name).second) return Error(kv.first, full, "duplicate key");
  }
  return Status::Ok();
}

Result<std::string> YamlReader::String(const YAML::Node& node, std::string_view key) const {
  if (!node.IsScalar()) return Error(node, key, "must be a string");
  return node.Scalar();
}

Result<bool> YamlReader::Bool(const YAML::Node& node, std::string_view key) const {
  if (node.IsScalar()) {
    const std::string& s = node.Scalar();
    if (s == "true") return true;
    if (s == "false") return false;
  }
  return Error(node, key, "must be true or false");
}

Result<uint64_t> YamlReader::Uint(const YAML::Node& node, std::string_view key, uint64_t min,
                                  uint64_t max) const {
  if (node.IsScalar()) {
    const std::string& s = node.Scalar();
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (!s.empty() && ec == std::errc() && end == s.data() + s.size() && v >= min && v <= max) return v;
  }
  return Error(node, key, fmt::format("must be an integer from {} to {}", min, max));
}

}  // namespace cfs::config
