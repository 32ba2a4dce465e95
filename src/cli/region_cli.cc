// CLI11 registration of `snapshot copy` and the replica commands.
#include "cli/region_cli.h"

#include <memory>

#include "cli/region_commands.h"
#include "cli/region_serve.h"
#include "cli/replica_commands.h"

namespace cfs::cli {
namespace {

// --target and this end's TLS identity (DESIGN rule 8).
void AddTlsTarget(CLI::App* sub, std::string* target, crypto::TlsIdentity* tls) {
  sub->add_option("--target", *target,
                  "the target region's server on another host, tls://HOST:PORT (cipherfs region serve)");
  sub->add_option("--tls-cert", tls->cert_file, "with --target: this end's certificate (PEM)");
  sub->add_option("--tls-key", tls->key_file, "with --target: this end's private key (PEM)");
  sub->add_option("--tls-ca", tls->ca_file, "with --target: the CA that signed the server's certificate (PEM)");
}

struct Args {
  SnapshotCopyArgs copy;
  ReplicaCreateArgs replica;
  RegionServeArgs serve;
  std::string id;
  bool follow = false;
  // 10 s: measured, pgbench on the source keeps 0.92x of its TPS while a
  // replica ships back to back at it, 0.69x at 1 s (docs/regions.md).
  int interval_ms = 10000;
};

}  // namespace

void RegisterRegionCommands(CLI::App& app, const SnapshotCliHooks& h) {
  auto a = std::make_shared<Args>();
  auto on = [h, a](CLI::App* sub, std::function<Status(Context&, Args&)> f) {
    sub->callback([h, a, f] { h.set_action([a, f](Context& c) { return f(c, *a); }); });
  };
  CLI::App* snap = app.get_subcommand("snapshot");
  CLI::App* copy = snap->add_subcommand(
      "copy",
      "Copy a snapshot, within its region or to another one (--region names the target region).\n"
      "Same region: --kms-key-id may name another key (the data key is re-wrapped; chunks are shared).\n"
      "Another region: an encrypted snapshot needs --kms-key-id, a key of the target region; the chunks\n"
      "travel as ciphertext, each checked by SHA-256 on arrival. An interrupted copy resumes when the\n"
      "same command is run again; --abort removes what it had moved. An unencrypted snapshot copies\n"
      "unencrypted (no key).");
  copy->footer(
      "Examples:\n"
      "  cipherfs snapshot copy --source-snapshot s1 --target-snapshot s1-rekeyed --kms-key-id alias/other\n"
      "  cipherfs snapshot copy --source-snapshot s1 --source-region local-1 --target-snapshot s1-dr \\\n"
      "      --region dr-1 --kms-key-id alias/dr\n"
      "  cipherfs snapshot copy --abort --target-snapshot s1-dr --region dr-1\n"
      "  cipherfs snapshot copy --source-snapshot s1 --source-region local-1 --target-snapshot s1-dr \\\n"
      "      --region dr-1 --kms-key-id alias/dr --target tls://dr-host:7443 \\\n"
      "      --tls-cert me.pem --tls-key me.key --tls-ca ca.pem\n");
  h.add_common(copy);
  copy->add_option("--source-snapshot", a->copy.source_snapshot, "snapshot to copy");
  copy->add_option("--source-region", a->copy.source_region, "region of the source (default: --region)");
  copy->add_option("--target-snapshot", a->copy.target_snapshot, "identifier of the copy")->required();
  copy->add_option("--kms-key-id", a->copy.kms_key_id, "key of the target region for the copy's data key");
  copy->add_flag("--abort", a->copy.abort, "remove an interrupted copy's staging folder");
  AddTlsTarget(copy, &a->copy.target, &a->copy.tls);
  on(copy, [](Context& c, Args& x) {
    if (!x.copy.abort && x.copy.source_snapshot.empty()) {
      return InvalidArgument("snapshot copy needs --source-snapshot (or --abort)");
    }
    return SnapshotCopy(c, x.copy);
  });

  CLI::App* rep = app.add_subcommand("replica", "Read-only replicas: same region (a read-only mount beside the "
                                                "writer) or another region (shipped)");
  rep->require_subcommand(1);
  CLI::App* create = Leaf(
      rep, h, "create",
      "Same region: mount the source's volume read-only beside its writer (--mountpoint).\n"
      "Another region (--source-region names the source's, --region the replica's): a volume in the\n"
      "replica region, the data key re-wrapped under --kms-key-id (a key of that region), and a first\n"
      "shipment. A replica has its source's encryption (DESIGN rule 6).",
      "  cipherfs replica create --source orders --id orders-ro --mountpoint /srv/orders-ro\n"
      "  cipherfs replica create --source orders --source-region local-1 --id orders-dr --region dr-1 \\\n"
      "      --kms-key-id alias/dr\n");
  create->add_option("--source", a->replica.source, "source cluster")->required();
  create->add_option("--source-region", a->replica.source_region, "region of the source (default: --region)");
  create->add_option("--id", a->replica.id, "replica identifier")->required();
  create->add_option("--kms-key-id", a->replica.kms_key_id, "cross-region: key of the replica's region");
  create->add_flag("--storage-encrypted", a->replica.storage_encrypted, "require an encrypted replica");
  create->add_option("--mountpoint", a->replica.mountpoint, "same region: where to mount the replica");
  create->add_option("-o", a->replica.options, "mount options (same region)")->allow_extra_args(false);
  create->add_flag("-f,--foreground", a->replica.foreground, "same region: stay in the foreground");
  AddTlsTarget(create, &a->replica.target, &a->replica.tls);
  on(create, [](Context& c, Args& x) { return ReplicaCreate(c, x.replica); });
  CLI::App* ship = Leaf(rep, h, "ship",
                        "Ship a cross-region replica: snapshot the source, send the chunks changed since the\n"
                        "last shipment, switch the replica to the new image atomically.",
                        "  cipherfs replica ship --id orders-dr --region dr-1\n"
                        "  cipherfs replica ship --id orders-dr --region dr-1 --follow --interval-ms 5000\n");
  ship->add_option("--id", a->id, "replica identifier")->required();
  ship->add_flag("--follow", a->follow, "ship again every --interval-ms until interrupted");
  ship->add_option("--interval-ms", a->interval_ms,
                   "pause between shipments with --follow (default 10000; shorter: less lag, a slower source)")
      ->check(CLI::Range(100, 86400000));
  on(ship, [](Context& c, Args& x) { return ReplicaShip(c, x.id, x.follow, x.interval_ms); });
  CLI::App* describe = Leaf(rep, h, "describe", "Show a replica's source, kind, key and lag",
                            "  cipherfs replica describe --id orders-dr --region dr-1 --output json\n");
  describe->add_option("--id", a->id, "replica identifier")->required();
  on(describe, [](Context& c, Args& x) { return ReplicaDescribe(c, x.id); });
  CLI::App* promote = Leaf(rep, h, "promote",
                           "Make a cross-region replica a standalone writable cluster (the image last shipped)",
                           "  cipherfs replica promote --id orders-dr --region dr-1\n");
  promote->add_option("--id", a->id, "replica identifier")->required();
  on(promote, [](Context& c, Args& x) { return ReplicaPromote(c, x.id); });

  CLI::App* region = app.add_subcommand("region", "Regions across hosts: receive copies and replica shipments");
  region->require_subcommand(1);
  CLI::App* serve = Leaf(
      region, h, "serve",
      "Receive snapshot copies and replica shipments into --region from other hosts, over TLS 1.3 with\n"
      "both ends authenticated by certificates of --tls-ca (DESIGN rule 8). The chunks arrive as\n"
      "ciphertext, each checked by SHA-256; an encrypted source's data key is wrapped here, by this\n"
      "region's KMS, under the --kms-key-id the sender named. Runs in the foreground; prints one line\n"
      "per session.",
      "  cipherfs region serve --region dr-1 --listen 0.0.0.0:7443 --tls-cert dr.pem --tls-key dr.key \\\n"
      "      --tls-ca ca.pem\n");
  serve->add_option("--listen", a->serve.listen, "IPv4 HOST:PORT to listen on (port 0: any free one)")->required();
  serve->add_option("--tls-cert", a->serve.tls.cert_file, "this server's certificate (PEM; names its host)")->required();
  serve->add_option("--tls-key", a->serve.tls.key_file, "this server's private key (PEM)")->required();
  serve->add_option("--tls-ca", a->serve.tls.ca_file, "CA whose client certificates are accepted (PEM)")->required();
  serve->add_flag("--once", a->serve.once, "exit after one session");
  on(serve, [](Context& c, Args& x) { return RegionServe(c, x.serve); });
}

}  // namespace cfs::cli
