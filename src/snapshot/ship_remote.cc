#include "snapshot/ship_remote.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include <fmt/format.h>

#include "common/log.h"
#include "snapshot/ship_tree.h"

namespace cfs::snapshot {
namespace {

bool PlainComponent(const std::string& s) {
  return !s.empty() && s.size() <= 128 && s != "." && s != ".." &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; });
}

Result<crypto::Digest> DigestFromHex(const std::string& hex) {
  std::optional<Bytes> b = HexDecode(hex);
  if (!b || b->size() != crypto::Digest().size()) return DataLoss("shipment peer sent a malformed digest");
  crypto::Digest d;
  std::copy(b->begin(), b->end(), d.begin());
  return d;
}

Status ToPeerAndBack(ShipWire& wire, Status s) {
  Status sent = wire.SendError(s);
  if (!sent.ok()) log::Warn("shipment: could not report an error to the peer: {}", sent.ToString());
  return s;
}

}  // namespace

std::string RemoteTarget::url() const { return fmt::format("tls://{}:{}", host, port); }

Result<RemoteTarget> ParseRemoteTarget(const std::string& url, const crypto::TlsIdentity& identity) {
  constexpr std::string_view kScheme = "tls://";
  auto bad = [&url] {
    return InvalidArgument(fmt::format("'{}' is not a shipment target; use tls://HOST:PORT", url));
  };
  if (url.compare(0, kScheme.size(), kScheme) != 0) return bad();
  std::string rest = url.substr(kScheme.size());
  size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size() || rest.size() - colon > 6) return bad();
  std::string port = rest.substr(colon + 1);
  if (!std::all_of(port.begin(), port.end(), ::isdigit)) return bad();
  unsigned long p = std::stoul(port);
  if (p == 0 || p > 65535) return bad();
  if (identity.cert_file.empty() || identity.key_file.empty() || identity.ca_file.empty()) {
    return InvalidArgument(fmt::format("shipping to {} needs --tls-cert, --tls-key and --tls-ca (DESIGN rule 8: "
                                       "both ends authenticated by certificates)", url));
  }
  return RemoteTarget{rest.substr(0, colon), static_cast<uint16_t>(p), identity};
}

bool IsValidChunkRel(const std::string& rel) {
  size_t a = rel.find('/');
  size_t b = rel.rfind('/');
  if (a == std::string::npos || a == b) return false;
  std::string idx = rel.substr(b + 1);
  return PlainComponent(rel.substr(0, a)) && PlainComponent(rel.substr(a + 1, b - a - 1)) && !idx.empty() &&
         idx.size() <= 10 && std::all_of(idx.begin(), idx.end(), ::isdigit);
}

Result<std::unique_ptr<RemoteSession>> RemoteSession::Open(const RemoteTarget& t, const RemoteHello& h,
                                                           const SecretBytes* key) {
  CFS_ASSIGN_OR_RETURN(std::unique_ptr<crypto::TlsChannel> ch, crypto::TlsChannel::Connect(t.host, t.port, t.identity));
  std::unique_ptr<RemoteSession> s(new RemoteSession(std::move(ch)));
  nlohmann::json head{{"kind", h.kind},     {"target", h.target_id}, {"region", h.region}, {"key_id", h.key_id},
                      {"job", h.job},       {"point_in_time", h.point_in_time}, {"key", key != nullptr}};
  ByteView yaml(reinterpret_cast<const uint8_t*>(h.source_yaml.data()), h.source_yaml.size());
  Status sent = s->wire_.Send(ShipMsg::kHello, head, yaml);
  if (sent.ok() && key != nullptr) sent = s->wire_.SendKey(*key);
  // Read even when the send failed: a refusal's alert says why.
  Result<ShipMessage> ready = s->wire_.Expect(ShipMsg::kReady);
  if (!ready.ok()) {
    // TLS 1.3: a server refusing this end's certificate says so with an
    // alert after the client's handshake returned.
    if (ready.status().code() == Code::kUnavailable && ready.status().message().find("alert") != std::string::npos) {
      return PermissionDenied(fmt::format("{} refused this end's TLS certificate: {}", t.url(),
                                          ready.status().message()));
    }
    return sent.ok() ? ready.status() : sent;
  }
  CFS_RETURN_IF_ERROR(sent);
  auto it = ready->header.find("done");
  if (it != ready->header.end() && it->is_array()) {
    for (const auto& e : *it) {
      if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_number_unsigned()) {
        s->done_[e[0].get<std::string>()] = e[1].get<uint64_t>();
      }
    }
  }
  return s;
}

Status RemoteSession::SendTree(store::Backing* b, const std::string& volume_dir) {
  CFS_ASSIGN_OR_RETURN(Bytes packed, PackTree(b, volume_dir));
  return Exchange(ShipMsg::kTree, nlohmann::json::object(), packed);
}

Status RemoteSession::Exchange(ShipMsg type, const nlohmann::json& header, ByteView payload) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!failed_.ok()) return failed_;  // the first failure, for every later call
  Status s = wire_.Send(type, header, payload);
  // Read even after a failed send: the peer's error says why it hung up.
  Result<ShipMessage> ack = wire_.Expect(ShipMsg::kAck);
  if (ack.ok() && !s.ok()) ack = s;
  if (!ack.ok()) failed_ = ack.status();
  return ack.status();
}

Status RemoteSession::Chunks::Receive(const std::string& rel, ByteView data, const crypto::Digest& sent) {
  return s_->Exchange(ShipMsg::kChunk, {{"rel", rel}, {"sha256", HexEncode(ByteView(sent.data(), sent.size()))}},
                      data);
}

Status RemoteSession::Chunks::Remove(const std::string& rel) { return s_->Exchange(ShipMsg::kRemove, {{"rel", rel}}); }

Result<nlohmann::json> RemoteSession::Commit() {
  std::lock_guard<std::mutex> lock(mu_);
  CFS_RETURN_IF_ERROR(failed_);
  CFS_RETURN_IF_ERROR(wire_.Send(ShipMsg::kCommit, nlohmann::json::object()));
  CFS_ASSIGN_OR_RETURN(ShipMessage done, wire_.Expect(ShipMsg::kDone));
  return done.header;
}

Result<RemoteHello> ReceiveHello(ShipWire& wire, SecretBytes* key) {
  CFS_ASSIGN_OR_RETURN(ShipMessage m, wire.Expect(ShipMsg::kHello));
  RemoteHello h;
  CFS_ASSIGN_OR_RETURN(h.kind, HeaderString(m.header, "kind"));
  CFS_ASSIGN_OR_RETURN(h.target_id, HeaderString(m.header, "target"));
  CFS_ASSIGN_OR_RETURN(h.region, HeaderString(m.header, "region"));
  CFS_ASSIGN_OR_RETURN(h.key_id, HeaderString(m.header, "key_id"));
  CFS_ASSIGN_OR_RETURN(h.job, HeaderString(m.header, "job"));
  CFS_ASSIGN_OR_RETURN(h.point_in_time, HeaderString(m.header, "point_in_time"));
  h.source_yaml.assign(m.payload.begin(), m.payload.end());
  auto k = m.header.find("key");
  if (k != m.header.end() && k->is_boolean() && k->get<bool>()) {
    CFS_ASSIGN_OR_RETURN(*key, wire.ReceiveKey());
  }
  return h;
}

Status ReceiveImage(ShipWire& wire, store::Backing* b, const std::string& volume_dir, ChunkReceiver* receiver) {
  for (;;) {
    CFS_ASSIGN_OR_RETURN(ShipMessage m, wire.Receive());
    Status s;
    switch (m.type) {
      case ShipMsg::kCommit: return Status::Ok();
      case ShipMsg::kTree: {
        std::error_code ec;
        std::filesystem::remove_all(volume_dir + "/tree", ec);
        s = UnpackTree(b, m.payload, volume_dir);
        break;
      }
      case ShipMsg::kRemove:
      case ShipMsg::kChunk: {
        Result<std::string> rel = HeaderString(m.header, "rel");
        if (!rel.ok() || !IsValidChunkRel(*rel)) return ToPeerAndBack(wire, DataLoss("shipment peer named a bad chunk"));
        if (m.type == ShipMsg::kRemove) {
          s = receiver->Remove(*rel);
          break;
        }
        Result<std::string> hex = HeaderString(m.header, "sha256");
        Result<crypto::Digest> digest = hex.ok() ? DigestFromHex(*hex) : Result<crypto::Digest>(hex.status());
        s = digest.ok() ? receiver->Receive(*rel, m.payload, *digest) : digest.status();
        break;
      }
      default: s = DataLoss(fmt::format("shipment peer sent message type {} mid-image", static_cast<int>(m.type)));
    }
    if (!s.ok()) return ToPeerAndBack(wire, s);
    CFS_RETURN_IF_ERROR(wire.Send(ShipMsg::kAck, nlohmann::json::object()));
  }
}

}  // namespace cfs::snapshot
