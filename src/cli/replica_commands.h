// `cipherfs replica create|ship|describe|promote` (DESIGN.md rules 6 and 8;
// docs/regions.md). A same-region replica is a read-only mount of its
// source's volume beside the writer. A cross-region replica is a volume in
// region/replicas/<id>/ (state in region/replicas/<id>.json) kept current by
// `replica ship`, which snapshots the source and ships the chunks changed
// since the last shipment; `replica promote` makes it a cluster.
// Thread safety: one command per process; shipments of one replica are
// serialized by region/replicas/<id>.lock.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cli/context.h"
#include "config/volume_yaml.h"
#include "crypto/tls_channel.h"
#include "snapshot/ship_remote.h"

namespace cfs::cli {

struct ReplicaCreateArgs {
  std::string source;                        // source cluster id
  std::optional<std::string> source_region;  // default: --region
  std::string id;
  std::optional<std::string> kms_key_id;     // cross-region, encrypted source: a key of --region
  bool storage_encrypted = false;            // asserted: refused for an unencrypted source (rule 6)
  std::string mountpoint;                    // same region: where the read-only instance is mounted
  std::vector<std::string> options;          // -o
  bool foreground = false;
  // Cross-region on another host: the receiving end (`region serve`) as
  // tls://HOST:PORT, and this end's TLS identity. Remembered for `ship`.
  std::string target;
  crypto::TlsIdentity tls;
};

Status ReplicaCreate(Context& ctx, const ReplicaCreateArgs& args);
// One shipment (follow = repeat every `interval_ms` until interrupted).
Status ReplicaShip(Context& ctx, const std::string& id, bool follow, int interval_ms);
Status ReplicaDescribe(Context& ctx, const std::string& id);
Status ReplicaPromote(Context& ctx, const std::string& id);
// The receiving end of a shipment from another host (`region serve`): the
// replica `hello.target_id` of this region, created by its first shipment
// (data key wrapped here under hello.key_id), then replaced by each next
// image atomically.
Status ServeReplicaShipment(Context& ctx, snapshot::ShipWire& wire, const snapshot::RemoteHello& hello,
                            const config::VolumeDescriptor& source, const SecretBytes& key);

}  // namespace cfs::cli
