// The mount daemon's control channel: a Unix socket
// <cluster dir>/control.sock (mode 0600) speaking one JSON object per line
// each way. Peers are authenticated by SO_PEERCRED: the daemon's uid or
// root. Requests (docs/snapshots.md):
//   {"op":"snapshot","id":S,"kind":"manual|automated"[,"descriptor":YAML]}
//       -> {"ok":true,"pause_us":N,"total_us":N,"chunks_linked":N}
//   {"op":"stats"} -> {"ok":true,"counters":{...DataCounters...}}
// Errors: {"ok":false,"code":"<CodeName>","errno":N,"message":"..."}.
// Thread safety: the server handles one request at a time on its own
// thread; ControlCall may be used from any thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/context.h"
#include "common/result.h"
#include "fs/mount.h"

namespace cfs::cli {

inline constexpr char kControlSocketName[] = "control.sock";

// Serves requests on `socket_path` until destroyed (it unlinks the socket).
class ControlServer {
 public:
  using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;
  static Result<std::unique_ptr<ControlServer>> Start(const std::string& socket_path, Handler handler);
  ~ControlServer();

 private:
  ControlServer() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Sends one request and returns the daemon's answer (an {"ok":false} answer
// becomes the Status it names). Unavailable if no daemon listens.
Result<nlohmann::json> ControlCall(const std::string& socket_path, const nlohmann::json& request);

// MountOptions::on_live for a writer mount of cluster `cluster_id`: starts
// the control server on the live volume, stops it when serving ends.
std::function<void(fs::LiveMount*)> LiveControlHook(Context* ctx, const std::string& cluster_id);

}  // namespace cfs::cli
