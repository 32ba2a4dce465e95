#include "cli/kmsd_command.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include <fmt/format.h>

#include "cli/exit_codes.h"

#include "common/atomic_file.h"
#include "keymgr/kms_server.h"
#include "keymgr/socket_key_manager.h"

namespace cfs::cli {
namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop.store(true); }

Result<std::string> ReadPassphrase(const std::string& path) {
  Result<std::string> text = ReadSmallFile(path, 4096);
  if (!text.ok()) return WithHint(text.status(), "the passphrase file must be readable by cipherfs");
  std::string p = *text;
  while (!p.empty() && (p.back() == '\n' || p.back() == '\r')) p.pop_back();
  return p;
}

struct KmsdArgs {
  std::string socket;
  std::optional<std::string> passphrase_file;
};

Status RunKmsd(Context& ctx, const KmsdArgs& a) {
  std::string socket = a.socket.empty() ? fmt::format("/run/cipherfs/kms-{}.sock", ctx.config.region) : a.socket;
  size_t slash = socket.rfind('/');
  if (slash != std::string::npos && slash > 0) CFS_RETURN_IF_ERROR(MakeDirs(socket.substr(0, slash), 0755));
  CFS_ASSIGN_OR_RETURN(auto kms, OpenLocalRegionKms(ctx.config, ctx.account, ctx.config.region, a.passphrase_file));
  struct sigaction sa{};
  sa.sa_handler = OnSignal;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  auto ready = [&] {
    std::cerr << fmt::format("cipherfs kmsd: serving region {} on {} (pid {})\n", ctx.config.region, socket,
                             ::getpid());
  };
  return keymgr::ServeKms(kms.get(), socket, &g_stop, ready);
}

}  // namespace

Result<std::unique_ptr<keymgr::LocalKeyManager>> OpenLocalRegionKms(const config::Config& config,
                                                                    const std::string& account,
                                                                    const std::string& region,
                                                                    const std::optional<std::string>& passphrase_file) {
  if (!config::IsValidRegionName(region)) {
    return InvalidArgument(fmt::format("'{}' is not a valid region name", region));
  }
  keymgr::LocalKeyManagerOptions o;
  o.kms_dir = config.RegionDir(region) + "/kms";
  o.region = region;
  o.account = account;
  o.caller_uid = ::geteuid();
  if (passphrase_file) {
    CFS_ASSIGN_OR_RETURN(std::string p, ReadPassphrase(*passphrase_file));
    o.passphrase = std::move(p);
  }
  return keymgr::LocalKeyManager::Open(o);
}

Result<std::unique_ptr<keymgr::KeyManager>> OpenRegionKms(const config::Config& config, const std::string& account,
                                                          const std::string& region) {
  const char* socket = std::getenv("CIPHERFS_KMS_SOCKET");
  if (socket != nullptr && *socket != '\0') {
    if (!config::IsValidRegionName(region)) {
      return InvalidArgument(fmt::format("'{}' is not a valid region name", region));
    }
    return std::unique_ptr<keymgr::KeyManager>(new keymgr::SocketKeyManager(socket, region));
  }
  const char* pass = std::getenv("CIPHERFS_KMS_PASSPHRASE_FILE");
  std::optional<std::string> passphrase_file;
  if (pass != nullptr && *pass != '\0') passphrase_file = pass;
  CFS_ASSIGN_OR_RETURN(auto kms, OpenLocalRegionKms(config, account, region, passphrase_file));
  return std::unique_ptr<keymgr::KeyManager>(std::move(kms));
}

void RegisterKmsdCommand(CLI::App& app, const KmsCliHooks& hooks) {
  auto a = std::make_shared<KmsdArgs>();
  CLI::App* sub = app.add_subcommand(
      "kmsd",
      "Serve the region's KMS on a Unix socket (foreground). Callers are identified by their\n"
      "peer credentials; key policies and grants decide what each local user may call. Point\n"
      "other cipherfs commands at it with CIPHERFS_KMS_SOCKET=PATH.");
  sub->footer("Examples:\n  cipherfs kmsd --socket /run/cipherfs/kms-local-1.sock &\n"
              "  cipherfs kms create-grant --key-id KEY-ID --grantee-principal postgres --operations Decrypt "
              "GenerateDataKey DescribeKey\n"
              "  sudo -u postgres env CIPHERFS_KMS_SOCKET=/run/cipherfs/kms-local-1.sock cipherfs mount pg ~/pg\n");
  hooks.add_common(sub);
  sub->add_option("--socket", a->socket, "socket path (default /run/cipherfs/kms-REGION.sock)");
  sub->add_option("--passphrase-file", a->passphrase_file, "derive the root key from the passphrase in this file");
  sub->callback([a, set = hooks.set_action] { set([a](Context& c) { return RunKmsd(c, *a); }, false); });
}

}  // namespace cfs::cli
