// CLI11 registration of `snapshot copy` and the replica commands.
#include "cli/region_cli.h"

#include <memory>

#include "cli/region_commands.h"
#include "cli/replica_commands.h"

namespace cfs::cli {
namespace {

struct Args {
  SnapshotCopyArgs copy;
  ReplicaCreateArgs replica;
  std::string id;
  bool follow = false;
  int interval_ms = 1000;
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
      "  cipherfs snapshot copy --abort --target-snapshot s1-dr --region dr-1\n");
  h.add_common(copy);
  copy->add_option("--source-snapshot", a->copy.source_snapshot, "snapshot to copy");
  copy->add_option("--source-region", a->copy.source_region, "region of the source (default: --region)");
  copy->add_option("--target-snapshot", a->copy.target_snapshot, "identifier of the copy")->required();
  copy->add_option("--kms-key-id", a->copy.kms_key_id, "key of the target region for the copy's data key");
  copy->add_flag("--abort", a->copy.abort, "remove an interrupted copy's staging folder");
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
  on(create, [](Context& c, Args& x) { return ReplicaCreate(c, x.replica); });
  CLI::App* ship = Leaf(rep, h, "ship",
                        "Ship a cross-region replica: snapshot the source, send the chunks changed since the\n"
                        "last shipment, switch the replica to the new image atomically.",
                        "  cipherfs replica ship --id orders-dr --region dr-1\n"
                        "  cipherfs replica ship --id orders-dr --region dr-1 --follow --interval-ms 5000\n");
  ship->add_option("--id", a->id, "replica identifier")->required();
  ship->add_flag("--follow", a->follow, "ship again every --interval-ms until interrupted");
  ship->add_option("--interval-ms", a->interval_ms, "pause between shipments with --follow")->check(CLI::Range(100, 86400000));
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
}

}  // namespace cfs::cli
