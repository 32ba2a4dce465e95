// `cipherfs snapshot copy`: a snapshot copied within its region (another
// key may be named: the data key is re-wrapped, the chunks are hard-linked)
// or to another region (the chunks travel as ciphertext, each checked by
// SHA-256 on arrival, resumable; the data key is decrypted by the source
// region's KMS and encrypted by the target region's under a key of that
// region). DESIGN.md rule 4; docs/regions.md.
// Thread safety: one command per process.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/context.h"
#include "config/volume_yaml.h"
#include "crypto/tls_channel.h"

namespace cfs::cli {

struct SnapshotCopyArgs {
  std::string source_snapshot;
  std::optional<std::string> source_region;  // default: the target region (--region)
  std::string target_snapshot;
  std::optional<std::string> kms_key_id;     // a key of the target region
  bool abort = false;                        // remove an interrupted copy's staging folder
  // The target region on another host: its `region serve` as
  // tls://HOST:PORT, and this end's TLS identity.
  std::string target;
  crypto::TlsIdentity tls;
  std::string target_region;  // filled in by the command
};

Status SnapshotCopy(Context& ctx, const SnapshotCopyArgs& args);

// The lineage of a volume as JSON: [{"Relation", "Arn", "Time"}...], oldest
// first (snapshot-of, copied-from, replica-of, restored-from...).
nlohmann::json LineageJson(const config::VolumeDescriptor& d);
// The ARN of the last lineage entry with `relation`, or "".
std::string LastLineageArn(const config::VolumeDescriptor& d, const std::string& relation);

// A Context for `region` (same home, account and wiring).
Context ContextForRegion(const Context& ctx, const std::string& region);

}  // namespace cfs::cli
