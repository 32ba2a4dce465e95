// kmsd's server loop: serves one region's LocalKeyManager on a Unix stream
// socket. Each connection carries one request line and gets one response
// line (kms_wire.h). The caller is identified by the kernel (SO_PEERCRED),
// never by anything it sends, and every call is authorized against the
// key's policy and grants as that user (access_policy.h). The socket is
// mode 0666: connecting is open to local users, calling is what policies
// decide; the key store and root key stay private to kmsd's user.
// Thread safety: ServeKms runs on one thread, requests one at a time.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "common/result.h"
#include "keymgr/local_key_manager.h"

namespace cfs::keymgr {

// Binds `socket_path` (replacing a stale socket, refusing a live one or a
// non-socket), calls `on_ready` once listening, then serves until `stop`
// becomes true (checked every 200 ms). Removes the socket on return.
Status ServeKms(LocalKeyManager* kms, const std::string& socket_path, const std::atomic<bool>* stop,
                const std::function<void()>& on_ready = nullptr);

}  // namespace cfs::keymgr
