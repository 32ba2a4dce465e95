#include "cli/region_serve.h"

#include <unistd.h>

#include <algorithm>
#include <iostream>

#include <fmt/format.h>

#include "cli/cluster_commands.h"
#include "cli/replica_commands.h"
#include "cli/snapshot_commands.h"
#include "common/log.h"
#include "snapshot/copy_snapshot.h"
#include "snapshot/ship_remote.h"
#include "snapshot/snapshot.h"

namespace cfs::cli {
namespace {

Status ParseListen(const std::string& listen, std::string* host, uint16_t* port) {
  size_t colon = listen.rfind(':');
  std::string p = colon == std::string::npos ? "" : listen.substr(colon + 1);
  if (colon == 0 || p.empty() || p.size() > 5 || !std::all_of(p.begin(), p.end(), ::isdigit) ||
      std::stoul(p) > 65535) {
    return InvalidArgument(fmt::format("--listen '{}' is not HOST:PORT (an IPv4 address, e.g. 0.0.0.0:7443)", listen));
  }
  *host = listen.substr(0, colon);
  *port = static_cast<uint16_t>(std::stoul(p));
  return Status::Ok();
}

// A copy's descriptor in this region, its data key wrapped here under the
// key the sender named (DESIGN rule 4: a key of the target region).
Result<config::VolumeDescriptor> CopyHere(Context& ctx, const snapshot::RemoteHello& h,
                                          const config::VolumeDescriptor& s, const SecretBytes& key) {
  if (!config::IsValidVolumeId(h.target_id)) return InvalidArgument(fmt::format("'{}' is not a valid snapshot id", h.target_id));
  std::error_code ec;
  if (std::filesystem::exists(SnapshotDir(ctx, h.target_id), ec)) {
    return AlreadyExists(fmt::format("snapshot {} already exists in region {}", h.target_id, ctx.config.region));
  }
  if (s.storage_encrypted && h.key_id.empty()) {
    return FailedPrecondition(fmt::format("copying encrypted snapshot {} to region {} needs a KMS key of region {} "
                                          "(DESIGN rule 4); nothing was written", s.id, ctx.config.region,
                                          ctx.config.region));
  }
  if (!s.storage_encrypted && !h.key_id.empty()) {
    return FailedPrecondition(fmt::format("snapshot {} is not encrypted and its copy can't be (DESIGN rule 4)", s.id));
  }
  config::VolumeDescriptor d = s;
  d.kind = config::VolumeKind::kSnapshot;
  NewVolumeHere(ctx, d, h.target_id, SnapshotArn(ctx, h.target_id), snapshot::kRelCopied, s.arn);
  CFS_RETURN_IF_ERROR(WrapDataKeyHere(ctx, d, h.key_id, key));
  return d;
}

Status ServeCopy(Context& ctx, snapshot::ShipWire& wire, const snapshot::RemoteHello& h,
                 const config::VolumeDescriptor& s, const SecretBytes& key) {
  CFS_ASSIGN_OR_RETURN(config::VolumeDescriptor d, CopyHere(ctx, h, s, key));
  CFS_RETURN_IF_ERROR(MakeDirs(SnapshotsDir(ctx), 0755));
  snapshot::VolumeCopyJob job{"", SnapshotsDir(ctx), d.id, h.job};
  CFS_ASSIGN_OR_RETURN(std::unique_ptr<snapshot::CopyStaging> st, snapshot::CopyStaging::Open(ctx.backing, job));
  nlohmann::json done = nlohmann::json::array();
  for (const auto& [rel, size] : st->receiver()->done()) done.push_back({rel, size});
  CFS_RETURN_IF_ERROR(wire.Send(snapshot::ShipMsg::kReady, {{"done", done}}));
  Status r = snapshot::ReceiveImage(wire, ctx.backing, st->volume_dir(), st->receiver());
  if (!r.ok()) {
    Status f = st->receiver()->Finish();  // what arrived stays recorded: a rerun resumes
    if (!f.ok()) log::Warn("copy {}: {}", d.id, f.ToString());
    return r;
  }
  CFS_RETURN_IF_ERROR(st->Commit(d));
  nlohmann::json j{{"arn", d.arn}, {"region", d.region}, {"encrypted", d.storage_encrypted},
                   {"key_arn", d.kms_key_arn}, {"resumed", st->resumed()}};
  return wire.Send(snapshot::ShipMsg::kDone, j);
}

Status ServeSession(Context& ctx, crypto::TlsChannel& ch, std::string* what) {
  snapshot::ShipWire wire(&ch);
  SecretBytes key;
  Status s = [&]() -> Status {
    CFS_ASSIGN_OR_RETURN(snapshot::RemoteHello h, snapshot::ReceiveHello(wire, &key));
    *what = fmt::format("{} {}", h.kind, h.target_id);
    if (h.region != ctx.config.region) {
      return FailedPrecondition(fmt::format("this server receives into region {}, not {}", ctx.config.region, h.region));
    }
    CFS_ASSIGN_OR_RETURN(config::VolumeDescriptor src, config::ParseVolumeYaml(h.source_yaml, "sender's volume.yaml"));
    if (src.storage_encrypted == key.empty() && !(h.kind == "ship" && key.empty())) {
      return DataLoss("the sender's data key does not match its volume's encryption");
    }
    if (h.kind == "copy") return ServeCopy(ctx, wire, h, src, key);
    if (h.kind == "ship") return ServeReplicaShipment(ctx, wire, h, src, key);
    return InvalidArgument(fmt::format("unknown shipment kind '{}'", h.kind));
  }();
  key.Wipe();
  if (!s.ok() && s.code() != Code::kUnavailable) (void)wire.SendError(s);  // best effort
  return s;
}

}  // namespace

Status RegionServe(Context& ctx, const RegionServeArgs& a) {
  std::string host;
  uint16_t port = 0;
  CFS_RETURN_IF_ERROR(ParseListen(a.listen, &host, &port));
  for (const std::string* f : {&a.tls.cert_file, &a.tls.key_file, &a.tls.ca_file}) {
    if (f->empty()) return InvalidArgument("region serve needs --tls-cert, --tls-key and --tls-ca (DESIGN rule 8)");
  }
  CFS_ASSIGN_OR_RETURN(int lfd, crypto::ListenTcp(host, port, &port));
  *ctx.out << fmt::format("listening on {}:{} for region {}\n", host, port, ctx.config.region);
  ctx.out->flush();
  for (;;) {
    Result<std::unique_ptr<crypto::TlsChannel>> ch = crypto::TlsChannel::Accept(lfd, a.tls);
    if (!ch.ok()) {
      std::cerr << fmt::format("cipherfs region serve: refused a connection: {}\n", ch.status().ToString());
    } else {
      std::string what = "session";
      Status s = ServeSession(ctx, **ch, &what);
      *ctx.out << fmt::format("{} from {}: {}\n", what, (*ch)->peer_name(), s.ok() ? "done" : s.ToString());
      ctx.out->flush();
    }
    if (a.once) break;
  }
  ::close(lfd);
  return Status::Ok();
}

}  // namespace cfs::cli
