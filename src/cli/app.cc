#include "cli/app.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/cluster_commands.h"
#include "cli/exit_codes.h"
#include "cli/kms_cli.h"
#include "cli/mount_commands.h"
#include "cli/region_cli.h"
#include "cli/snapshot_cli.h"
#include "cli/stats_commands.h"

namespace cfs::cli {
namespace {

constexpr char kVersion[] = "cipherfs 0.1.0 (volume format 1, key store format 1)";

struct Parsed {
  std::optional<std::string> config_path;
  std::optional<std::string> region;
  std::optional<std::string> output;
  std::function<Status(Context&)> action;
  bool default_json = false;
  ClusterCreateArgs create;
  MountArgs mount;
  std::string id, key_id, alias_name, target_key_id, description, mountpoint;
  std::optional<std::string> list_key_id;
};

void AddCommon(CLI::App* sub, Parsed* p) {
  sub->add_option("--region", p->region, "region to work in (default: config default_region, or $CIPHERFS_REGION)");
  sub->add_option("--config", p->config_path, "config file (default: $CIPHERFS_HOME/config.yaml)");
  sub->add_option("--output", p->output, "output format")->check(CLI::IsMember({"text", "json"}));
}

CLI::App* Leaf(CLI::App* parent, const std::string& name, const std::string& what, const std::string& examples,
               Parsed* p) {
  CLI::App* sub = parent->add_subcommand(name, what);
  sub->footer("Examples:\n" + examples);
  AddCommon(sub, p);
  return sub;
}

void AddCluster(CLI::App& app, Parsed* p) {
  CLI::App* cluster = app.add_subcommand("cluster", "Create, list and describe clusters (encrypted volumes)");
  cluster->require_subcommand(1);
  cluster->footer("Examples:\n  cipherfs cluster create --id orders --storage-encrypted\n  cipherfs cluster list");
  CLI::App* create = Leaf(cluster, "create",
                          "Create a cluster: an empty volume, encrypted at creation or never.\n"
                          "Encrypted clusters get a fresh data key from the region's KMS, wrapped under\n"
                          "--kms-key-id (default: the managed key alias/aws/rds) with the encryption\n"
                          "context {\"cluster-arn\": <cluster ARN>}.",
                          "  cipherfs cluster create --id orders --storage-encrypted\n"
                          "  cipherfs cluster create --id billing --storage-encrypted --kms-key-id alias/billing\n"
                          "  cipherfs cluster create --id scratch            # not encrypted\n",
                          p);
  create->add_option("--id", p->create.id, "cluster identifier (1-63 letters, digits, hyphens)")->required();
  create->add_flag("--storage-encrypted", p->create.storage_encrypted, "encrypt the cluster (cannot be undone)");
  create->add_option("--kms-key-id", p->create.kms_key_id, "key id, key ARN, alias name or alias ARN");
  create->add_option("--backup-retention-period", p->create.backup_retention_period,
                     "days to keep automated backups, 1-35 (default 1; 0 = none, unencrypted only)");
  create->add_option("--preferred-backup-window", p->create.preferred_backup_window,
                     "daily backup window hh:mm-hh:mm UTC, >= 30 min (default: a half hour at night)");
  create->callback([p] { p->action = [p](Context& c) { return ClusterCreate(c, p->create); }; });
  CLI::App* list = Leaf(cluster, "list", "List the clusters of the region",
                        "  cipherfs cluster list\n  cipherfs cluster list --output json   # {\"DBClusters\": [...]}\n", p);
  list->callback([p] { p->action = [](Context& c) { return ClusterList(c); }; });
  CLI::App* describe = Leaf(cluster, "describe",
                            "Describe one cluster (JSON: {\"DBClusters\": [{DBClusterIdentifier, DBClusterArn,\n"
                            "StorageEncrypted, KmsKeyId, Status, ClusterCreateTime, Region...}]})",
                            "  cipherfs cluster describe --id orders --output json\n", p);
  describe->add_option("--id", p->id, "cluster identifier")->required();
  describe->callback([p] { p->action = [p](Context& c) { return ClusterDescribe(c, p->id); }; });
}

void AddMount(CLI::App& app, Parsed* p) {
  CLI::App* mount = Leaf(&app, "mount",
                         "Mount a cluster. Daemonizes once the mount is live (-f stays in front).\n"
                         "One writer per cluster; --read-only mounts may run beside it.",
                         "  cipherfs mount orders /srv/orders\n"
                         "  cipherfs mount orders /srv/orders -o allow_other     # as root, for a database user\n"
                         "  cipherfs mount orders /mnt/ro --read-only -f\n",
                         p);
  mount->add_option("ID", p->mount.id, "cluster identifier")->required();
  mount->add_option("MOUNTPOINT", p->mount.mountpoint, "an empty directory")->required();
  mount->add_option("-o", p->mount.options, "mount options (allow_other, ro, debug, or passed to FUSE)")
      ->allow_extra_args(false);
  mount->add_flag("-f,--foreground", p->mount.foreground, "stay in the foreground");
  mount->add_flag("--read-only", p->mount.read_only, "mount read-only (no writer lock)");
  mount->add_flag("--snapshot", p->mount.snapshot, "ID is a snapshot: mount it read-only");
  mount->callback([p] { p->action = [p](Context& c) { return Mount(c, p->mount); }; });
  CLI::App* umount = Leaf(&app, "umount", "Unmount a cipherfs mount and wait until its daemon has exited",
                          "  cipherfs umount /srv/orders\n", p);
  umount->add_option("MOUNTPOINT", p->mountpoint, "the mountpoint")->required();
  umount->callback([p] { p->action = [p](Context& c) { return Umount(c, p->mountpoint); }; });
}

Result<Context> BuildContext(const Parsed& p, const Wiring& w) {
  config::Overrides o = config::OverridesFromEnvironment();
  o.config_path = p.config_path;
  o.flag_region = p.region;
  CFS_ASSIGN_OR_RETURN(config::Config cfg, config::LoadConfig(o));
  Context ctx;
  ctx.config = std::move(cfg);
  ctx.account = config::AccountIdForHome(ctx.config.home);
  ctx.json = p.output ? *p.output == "json" : p.default_json;
  ctx.backing = w.backing;
  ctx.serve_volume = w.serve_volume;
  ctx.fuse_unmount = w.fuse_unmount;
  return ctx;
}

}  // namespace

int RunCli(int argc, char** argv, const Wiring& wiring) {
  CLI::App app("cipherfs: encrypted volumes for database data directories, with a local KMS.\n"
               "State lives in $CIPHERFS_HOME (default /var/lib/cipherfs for root,\n"
               "~/.local/share/cipherfs otherwise); see docs/cli.md.", "cipherfs");
  app.set_version_flag("--version", kVersion);
  app.require_subcommand(1);
  app.footer("Examples:\n  cipherfs cluster create --id orders --storage-encrypted\n"
             "  cipherfs mount orders /srv/orders\n  cipherfs umount /srv/orders\n"
             "Run 'cipherfs COMMAND --help' for each command.");
  Parsed p;
  AddCluster(app, &p);
  AddMount(app, &p);
  RegisterKmsCommands(app, {[&p](CLI::App* sub) { AddCommon(sub, &p); },
                            [&p](std::function<Status(Context&)> f, bool default_json) {
                              p.action = std::move(f);
                              p.default_json = default_json;
                            }});
  RegisterSnapshotCommands(app, app.get_subcommand("cluster"),
                           {[&p](CLI::App* sub) { AddCommon(sub, &p); },
                            [&p](std::function<Status(Context&)> f) { p.action = std::move(f); }});
  RegisterRegionCommands(app, {[&p](CLI::App* sub) { AddCommon(sub, &p); },
                               [&p](std::function<Status(Context&)> f) { p.action = std::move(f); }});
  RegisterStatsCommand(app, {[&p](CLI::App* sub) { AddCommon(sub, &p); },
                             [&p](std::function<Status(Context&)> f) { p.action = std::move(f); }});
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "cipherfs: " << e.what() << "; see: cipherfs --help\n";
    return kExitUsage;
  }
  if (!p.action) {
    std::cerr << "cipherfs: no command given; see: cipherfs --help\n";
    return kExitUsage;
  }
  Result<Context> ctx = BuildContext(p, wiring);
  Status s = ctx.status();
  if (s.ok()) {
    Context& c = *ctx;
    c.open_kms = [&c, &wiring](const std::string& region) { return wiring.open_kms(c.config, c.account, region); };
    s = p.action(c);
  }
  if (!s.ok()) std::cerr << ErrorLine(s) << "\n";
  return ExitCodeFor(s);
}

}  // namespace cfs::cli
