#include "config/volume_yaml.h"

#include <algorithm>
#include <cctype>
#include <ctime>

#include <fmt/format.h>

#include "common/atomic_file.h"
#include "config/config.h"
#include "config/yaml_checked.h"

namespace cfs::config {
namespace {

const std::set<std::string> kKeys = {"format", "kind", "id", "arn", "region", "storage_encrypted",
                                     "kms_key_arn", "wrapped_data_key", "cipher", "block_size",
                                     "chunk_blocks", "status", "created_at", "lineage"};
const std::set<std::string> kStatuses = {
    "creating", "available", "stopped", "inaccessible-encryption-credentials-recoverable",
    "inaccessible-encryption-credentials", "deleting", "copying", "restoring"};

Status Invalid(std::string_view what) { return InvalidArgument(std::string(what)); }

// Printable ASCII without spaces: ARNs, relations.
bool IsToken(std::string_view s) {
  return !s.empty() && s.size() <= 2048 && std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

Result<std::string> Required(const YamlReader& r, const YAML::Node& root, const char* key) {
  if (!root[key]) return r.Error(root, key, "is missing");
  return r.String(root[key], key);
}

Status ParseLineage(const YamlReader& r, const YAML::Node& node, VolumeDescriptor* d) {
  if (!node.IsSequence()) return r.Error(node, "lineage", "must be a list");
  for (const auto& item : node) {
    CFS_RETURN_IF_ERROR(r.CheckKeys(item, "lineage[]", {"relation", "arn", "at"}));
    LineageEntry e;
    CFS_ASSIGN_OR_RETURN(e.relation, Required(r, item, "relation"));
    CFS_ASSIGN_OR_RETURN(e.arn, Required(r, item, "arn"));
    CFS_ASSIGN_OR_RETURN(e.at, Required(r, item, "at"));
    d->lineage.push_back(std::move(e));
  }
  return Status::Ok();
}

Status ParseFields(const YamlReader& r, const YAML::Node& root, VolumeDescriptor* d) {
  CFS_ASSIGN_OR_RETURN(std::string kind, Required(r, root, "kind"));
  if (kind == "cluster") d->kind = VolumeKind::kCluster;
  else if (kind == "snapshot") d->kind = VolumeKind::kSnapshot;
  else return r.Error(root["kind"], "kind", "must be cluster or snapshot");
  CFS_ASSIGN_OR_RETURN(d->id, Required(r, root, "id"));
  CFS_ASSIGN_OR_RETURN(d->arn, Required(r, root, "arn"));
  CFS_ASSIGN_OR_RETURN(d->region, Required(r, root, "region"));
  if (!root["storage_encrypted"]) return r.Error(root, "storage_encrypted", "is missing");
  CFS_ASSIGN_OR_RETURN(d->storage_encrypted, r.Bool(root["storage_encrypted"], "storage_encrypted"));
  if (root["kms_key_arn"]) {
    CFS_ASSIGN_OR_RETURN(d->kms_key_arn, r.String(root["kms_key_arn"], "kms_key_arn"));
  }
  if (const YAML::Node w = root["wrapped_data_key"]) {
    CFS_ASSIGN_OR_RETURN(std::string b64, r.String(w, "wrapped_data_key"));
    auto bytes = Base64Decode(b64);
    if (!bytes || bytes->empty() || bytes->size() > 6144) {
      return r.Error(w, "wrapped_data_key", "must be base64 of 1 to 6144 bytes");
    }
    d->wrapped_data_key = std::move(*bytes);
  }
  CFS_ASSIGN_OR_RETURN(d->cipher, Required(r, root, "cipher"));
  if (!root["block_size"]) return r.Error(root, "block_size", "is missing");
  CFS_ASSIGN_OR_RETURN(uint64_t bs, r.Uint(root["block_size"], "block_size", 4096, 4096));
  d->block_size = static_cast<uint32_t>(bs);
  if (!root["chunk_blocks"]) return r.Error(root, "chunk_blocks", "is missing");
  CFS_ASSIGN_OR_RETURN(uint64_t cb, r.Uint(root["chunk_blocks"], "chunk_blocks", 1, kMaxChunkBlocks));
  d->chunk_blocks = static_cast<uint32_t>(cb);
  CFS_ASSIGN_OR_RETURN(d->status, Required(r, root, "status"));
  CFS_ASSIGN_OR_RETURN(d->created_at, Required(r, root, "created_at"));
  if (root["lineage"]) CFS_RETURN_IF_ERROR(ParseLineage(r, root["lineage"], d));
  return Status::Ok();
}

}  // namespace

std::string_view VolumeKindName(VolumeKind kind) {
  return kind == VolumeKind::kCluster ? "cluster" : "snapshot";
}

bool IsValidVolumeId(std::string_view id) {
  if (id.empty() || id.size() > 63 || !std::isalpha(static_cast<unsigned char>(id[0])) || id.back() == '-') {
    return false;
  }
  for (size_t i = 0; i < id.size(); ++i) {
    char ch = id[i];
    bool ok = std::isalnum(static_cast<unsigned char>(ch)) || ch == '-';
    if (!ok || (ch == '-' && i > 0 && id[i - 1] == '-')) return false;
  }
  return true;
}

bool IsValidRfc3339(std::string_view s) {
  // Exactly YYYY-MM-DDTHH:MM:SSZ.
  static constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:ddZ";
  if (s.size() != kShape.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (kShape[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != kShape[i]) return false;
  }
  return true;
}

std::string NowRfc3339() {
  std::time_t now = std::time(nullptr);
  std::tm tm;
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Status ValidateVolumeDescriptor(const VolumeDescriptor& d) {
  if (d.format != kVolumeFormatVersion) return Invalid(fmt::format("format must be {}", kVolumeFormatVersion));
  if (!IsValidVolumeId(d.id)) return Invalid("id: not a valid identifier (1-63 letters, digits, hyphens)");
  std::string prefix = "arn:cipherfs:rds:" + d.region + ":";
  std::string tail = fmt::format(":{}:{}", d.kind == VolumeKind::kCluster ? "cluster" : "cluster-snapshot", d.id);
  std::string_view account = std::string_view(d.arn).substr(std::min(d.arn.size(), prefix.size()), 12);
  if (d.arn != prefix + std::string(account) + tail || account.size() != 12 ||
      !std::all_of(account.begin(), account.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
    return Invalid("arn: does not match the region, kind and id");
  }
  if (!IsValidRegionName(d.region)) return Invalid("region: not a valid region name");
  if (d.storage_encrypted) {
    if (d.kms_key_arn.rfind("arn:cipherfs:kms:" + d.region + ":", 0) != 0 || !IsToken(d.kms_key_arn) ||
        d.kms_key_arn.find(":key/") == std::string::npos) {
      return Invalid("kms_key_arn: an encrypted volume needs the ARN of a KMS key of its region");
    }
    if (d.wrapped_data_key.empty()) return Invalid("wrapped_data_key: an encrypted volume needs its wrapped data key");
    if (d.cipher != kCipherAes256Gcm) return Invalid("cipher: an encrypted volume uses AES-256-GCM");
  } else {
    if (!d.kms_key_arn.empty() || !d.wrapped_data_key.empty()) {
      return Invalid("kms_key_arn: an unencrypted volume has no key");
    }
    if (d.cipher != kCipherNone) return Invalid("cipher: an unencrypted volume has cipher none");
  }
  if (d.block_size != 4096) return Invalid("block_size: must be 4096");
  if (d.chunk_blocks == 0 || d.chunk_blocks > kMaxChunkBlocks) return Invalid("chunk_blocks: must be 1 to 2048");
  if (!kStatuses.count(d.status)) return Invalid(fmt::format("status: unknown status '{}'", d.status));
  if (!IsValidRfc3339(d.created_at)) return Invalid("created_at: must be like 2026-01-02T03:04:05Z");
  for (const auto& e : d.lineage) {
    bool relation_ok = !e.relation.empty() && e.relation.size() <= 64 &&
                       std::all_of(e.relation.begin(), e.relation.end(), [](char c) { return (c >= 'a' && c <= 'z') || c == '-'; });
    if (!relation_ok || e.arn.rfind("arn:cipherfs:", 0) != 0 || !IsToken(e.arn) || !IsValidRfc3339(e.at)) {
      return Invalid("lineage: each entry needs a relation, a cipherfs ARN and a time");
    }
  }
  return Status::Ok();
}

Result<std::string> FormatVolumeYaml(const VolumeDescriptor& d) {
  CFS_RETURN_IF_ERROR(ValidateVolumeDescriptor(d));
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "format" << YAML::Value << d.format;
  out << YAML::Key << "kind" << YAML::Value << std::string(VolumeKindName(d.kind));
  out << YAML::Key << "id" << YAML::Value << d.id;
  out << YAML::Key << "arn" << YAML::Value << d.arn;
  out << YAML::Key << "region" << YAML::Value << d.region;
  out << YAML::Key << "storage_encrypted" << YAML::Value << YAML::TrueFalseBool << d.storage_encrypted;
  if (d.storage_encrypted) {
    out << YAML::Key << "kms_key_arn" << YAML::Value << d.kms_key_arn;
    out << YAML::Key << "wrapped_data_key" << YAML::Value << Base64Encode(d.wrapped_data_key);
  }
  out << YAML::Key << "cipher" << YAML::Value << d.cipher;
  out << YAML::Key << "block_size" << YAML::Value << d.block_size;
  out << YAML::Key << "chunk_blocks" << YAML::Value << d.chunk_blocks;
  out << YAML::Key << "status" << YAML::Value << d.status;
  out << YAML::Key << "created_at" << YAML::Value << d.created_at;
  out << YAML::Key << "lineage" << YAML::Value;
  if (d.lineage.empty()) out << YAML::Flow;
  out << YAML::BeginSeq;
  for (const auto& e : d.lineage) {
    out << YAML::BeginMap << YAML::Key << "relation" << YAML::Value << e.relation << YAML::Key << "arn"
        << YAML::Value << e.arn << YAML::Key << "at" << YAML::Value << e.at << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
  if (!out.good()) return Internal("volume.yaml emitter: " + out.GetLastError());
  return "# cipherfs volume descriptor (docs/format/volume-yaml.md). Do not edit.\n" + std::string(out.c_str()) + "\n";
}

Result<VolumeDescriptor> ParseVolumeYaml(std::string_view text, const std::string& file_name) {
  YamlReader r(file_name);
  auto as_corrupt = [&](const Status& s) {
    return DataLoss(fmt::format("volume descriptor is corrupt: {}", s.message()));
  };
  Result<YAML::Node> parsed = r.Parse(text, /*allow_empty=*/false);
  if (!parsed.ok()) return as_corrupt(parsed.status());
  const YAML::Node& root = *parsed;
  if (!root["format"]) return as_corrupt(r.Error(root, "format", "is missing"));
  Result<uint64_t> format = r.Uint(root["format"], "format", 1, 1u << 30);
  if (!format.ok()) return as_corrupt(format.status());
  if (*format > static_cast<uint64_t>(kVolumeFormatVersion)) {
    return Unimplemented(fmt::format("{}: volume format {} is newer than this cipherfs supports ({}); upgrade cipherfs",
                                     file_name, *format, kVolumeFormatVersion));
  }
  Status s = r.CheckKeys(root, "", kKeys);
  VolumeDescriptor d;
  d.format = static_cast<int>(*format);
  if (s.ok()) s = ParseFields(r, root, &d);
  if (!s.ok()) return as_corrupt(s);
  if (Status v = ValidateVolumeDescriptor(d); !v.ok()) {
    return DataLoss(fmt::format("volume descriptor is corrupt: {}: {}", file_name, v.message()));
  }
  return d;
}

Result<VolumeDescriptor> ReadVolumeDescriptor(const std::string& volume_dir) {
  std::string path = volume_dir + "/" + std::string(kVolumeFileName);
  Result<std::string> text = ReadSmallFile(path, kMaxVolumeYamlSize);
  if (!text.ok()) {
    if (text.status().code() == Code::kInvalidArgument) return DataLoss(text.status().message());
    return text.status();
  }
  return ParseVolumeYaml(*text, path);
}

Status WriteVolumeDescriptor(const std::string& volume_dir, const VolumeDescriptor& d) {
  CFS_ASSIGN_OR_RETURN(std::string text, FormatVolumeYaml(d));
  return WriteFileAtomically(volume_dir + "/" + std::string(kVolumeFileName), text, 0644);
}

}  // namespace cfs::config
