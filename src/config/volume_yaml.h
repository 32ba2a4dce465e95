// volume.yaml: the descriptor of a volume (cluster or snapshot), format 1
// (docs/format/volume-yaml.md). Read with full validation (every byte of it
// is treated as hostile) and written atomically.
// Thread safety: pure functions; concurrent writers of one descriptor must
// serialize themselves (the last rename wins).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/encoding.h"
#include "common/result.h"

namespace cfs::config {

inline constexpr int kVolumeFormatVersion = 1;
inline constexpr std::string_view kVolumeFileName = "volume.yaml";
inline constexpr std::string_view kCipherAes256Gcm = "AES-256-GCM";
inline constexpr std::string_view kCipherNone = "none";
inline constexpr size_t kMaxVolumeYamlSize = 64 * 1024;
inline constexpr uint32_t kMaxChunkBlocks = 2048;  // docs/format/chunks.md

enum class VolumeKind { kCluster, kSnapshot };
std::string_view VolumeKindName(VolumeKind kind);  // "cluster" | "snapshot"

// Where a volume came from: one entry per step (snapshot-of, restored-from,
// cloned-from, copied-from), oldest first. Empty for a new cluster.
struct LineageEntry {
  std::string relation;
  std::string arn;
  std::string at;  // RFC 3339 UTC
  bool operator==(const LineageEntry&) const = default;
};

struct VolumeDescriptor {
  int format = kVolumeFormatVersion;
  VolumeKind kind = VolumeKind::kCluster;
  std::string id;      // cluster or snapshot identifier (IsValidVolumeId)
  std::string arn;     // arn:cipherfs:rds:<region>:<account>:cluster:<id> / cluster-snapshot:<id>
  std::string region;
  bool storage_encrypted = false;
  std::string kms_key_arn;    // empty when not encrypted
  Bytes wrapped_data_key;     // KMS ciphertext blob; empty when not encrypted
  std::string cipher = std::string(kCipherNone);  // AES-256-GCM when encrypted
  uint32_t block_size = 4096;
  uint32_t chunk_blocks = 256;
  std::string status = "available";
  std::string created_at;     // RFC 3339 UTC, e.g. 2026-01-02T03:04:05Z
  std::vector<LineageEntry> lineage;
  bool operator==(const VolumeDescriptor&) const = default;
};

// Identifier rules of the cloud API: 1-63 letters, digits and hyphens, first
// a letter, no trailing hyphen and no two consecutive hyphens.
bool IsValidVolumeId(std::string_view id);

// Checks the invariants of a descriptor (also run on every parse/write).
Status ValidateVolumeDescriptor(const VolumeDescriptor& d);

// Serializes `d` (which must validate) as YAML.
Result<std::string> FormatVolumeYaml(const VolumeDescriptor& d);

// Parses and validates. Errors: Unimplemented "volume format N is newer than
// this cipherfs supports (1)" for a newer format; DataLoss naming `file_name`,
// line and key for anything malformed.
Result<VolumeDescriptor> ParseVolumeYaml(std::string_view text, const std::string& file_name);

// <volume_dir>/volume.yaml, read / replaced atomically (mode 0644).
Result<VolumeDescriptor> ReadVolumeDescriptor(const std::string& volume_dir);
Status WriteVolumeDescriptor(const std::string& volume_dir, const VolumeDescriptor& d);

// Current time as RFC 3339 UTC with seconds ("2026-01-02T03:04:05Z").
std::string NowRfc3339();
bool IsValidRfc3339(std::string_view s);

}  // namespace cfs::config
