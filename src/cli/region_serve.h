// `cipherfs region serve`: the receiving end of shipments between hosts
// (DESIGN.md rule 8; docs/regions.md "Between hosts"). Listens on
// HOST:PORT under TLS 1.3, requires a client certificate of --tls-ca, and
// accepts into its region (--region) snapshot copies (`snapshot copy
// --target tls://...`) and replica shipments (`replica create|ship` of a
// replica created with --target). The data key of an encrypted source
// arrives inside TLS and is wrapped here, by this region's KMS, under the
// key the sender named (a key of this region); it is never written
// unwrapped.
// Thread safety: one session at a time, in the command's thread.
#pragma once

#include <string>

#include "cli/context.h"
#include "crypto/tls_channel.h"

namespace cfs::cli {

struct RegionServeArgs {
  std::string listen;          // HOST:PORT (port 0: any free port, printed)
  crypto::TlsIdentity tls;     // this end's certificate and key, the CA of accepted senders
  bool once = false;           // exit after one session (tests)
};

Status RegionServe(Context& ctx, const RegionServeArgs& args);

}  // namespace cfs::cli
