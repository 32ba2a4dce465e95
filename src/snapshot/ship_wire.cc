#include "snapshot/ship_wire.h"

#include <fmt/format.h>

#include "snapshot/copy_transfer.h"

namespace cfs::snapshot {
namespace {

constexpr size_t kHeadSize = 16;
constexpr uint32_t kMaxHeader = 64 * 1024;
constexpr uint64_t kMaxKey = 1024;
constexpr uint64_t kMaxTree = 1ull << 30;  // a packed tree/ (ship_tree.h)

uint64_t MaxPayload(ShipMsg t) {
  switch (t) {
    case ShipMsg::kHello: return 1 << 20;  // volume.yaml
    case ShipMsg::kKey: return kMaxKey;
    case ShipMsg::kTree: return kMaxTree;
    case ShipMsg::kChunk: return kMaxChunkFileSize;
    default: return 0;
  }
}

bool KnownType(uint8_t t) { return t >= 1 && t <= static_cast<uint8_t>(ShipMsg::kError); }

}  // namespace

Status ShipWire::Send(ShipMsg type, const nlohmann::json& header, ByteView payload) {
  std::string h = header.dump();
  uint8_t head[kHeadSize] = {static_cast<uint8_t>(type), 0, 0, 0};
  PutU32(head + 4, static_cast<uint32_t>(h.size()));
  PutU64(head + 8, payload.size());
  CFS_RETURN_IF_ERROR(ch_->Write(ByteView(head, kHeadSize)));
  CFS_RETURN_IF_ERROR(ch_->Write(ByteView(reinterpret_cast<const uint8_t*>(h.data()), h.size())));
  return payload.empty() ? Status::Ok() : ch_->Write(payload);
}

Status ShipWire::SendKey(const SecretBytes& key) {
  return Send(ShipMsg::kKey, nlohmann::json::object(), ByteView(key.UnsafeData(), key.size()));
}

Status ShipWire::SendError(const Status& s) {
  return Send(ShipMsg::kError, {{"code", static_cast<int>(s.code())}, {"message", s.message()},
                                {"errno", s.sys_errno()}});
}

Result<ShipWire::Head> ShipWire::ReadHead() {
  uint8_t head[kHeadSize];
  CFS_RETURN_IF_ERROR(ch_->Read(head, kHeadSize));
  if (!KnownType(head[0]) || head[1] != 0 || head[2] != 0 || head[3] != 0) {
    return DataLoss(fmt::format("shipment peer sent an unknown message (type {})", head[0]));
  }
  Head h{static_cast<ShipMsg>(head[0]), GetU32(head + 4), GetU64(head + 8)};
  if (h.header_len > kMaxHeader || h.payload_len > MaxPayload(h.type)) {
    return DataLoss(fmt::format("shipment peer sent an oversized message (type {}, {} + {} bytes)", head[0],
                                h.header_len, h.payload_len));
  }
  return h;
}

Result<ShipMessage> ShipWire::Receive() {
  CFS_ASSIGN_OR_RETURN(Head h, ReadHead());
  if (h.type == ShipMsg::kKey) return DataLoss("shipment peer sent a key where none was expected");
  std::string text(h.header_len, '\0');
  CFS_RETURN_IF_ERROR(ch_->Read(reinterpret_cast<uint8_t*>(text.data()), text.size()));
  ShipMessage m;
  m.type = h.type;
  m.header = text.empty() ? nlohmann::json::object() : nlohmann::json::parse(text, nullptr, false);
  if (m.header.is_discarded() || !m.header.is_object()) return DataLoss("shipment peer sent a malformed header");
  m.payload.resize(h.payload_len);
  if (h.payload_len > 0) CFS_RETURN_IF_ERROR(ch_->Read(m.payload.data(), m.payload.size()));
  return m;
}

Result<SecretBytes> ShipWire::ReceiveKey() {
  CFS_ASSIGN_OR_RETURN(Head h, ReadHead());
  if (h.type != ShipMsg::kKey || h.payload_len == 0) return DataLoss("shipment peer did not send the data key");
  std::string text(h.header_len, '\0');
  CFS_RETURN_IF_ERROR(ch_->Read(reinterpret_cast<uint8_t*>(text.data()), text.size()));
  SecretBytes key(static_cast<size_t>(h.payload_len));
  CFS_RETURN_IF_ERROR(ch_->Read(key.UnsafeData(), key.size()));
  return key;
}

Result<ShipMessage> ShipWire::Expect(ShipMsg want) {
  CFS_ASSIGN_OR_RETURN(ShipMessage m, Receive());
  if (m.type == ShipMsg::kError) {
    Result<uint64_t> code = HeaderU64(m.header, "code");
    Result<std::string> msg = HeaderString(m.header, "message");
    if (!code.ok() || !msg.ok() || *code == 0 || *code > static_cast<uint64_t>(Code::kInternal)) {
      return DataLoss("shipment peer sent a malformed error");
    }
    int err = m.header.contains("errno") && m.header["errno"].is_number_integer() ? m.header["errno"].get<int>() : 0;
    return Status(static_cast<Code>(*code), *msg, err);
  }
  if (m.type != want) {
    return FailedPrecondition(fmt::format("shipment peer sent message type {} where {} was expected",
                                          static_cast<int>(m.type), static_cast<int>(want)));
  }
  return m;
}

Result<std::string> HeaderString(const nlohmann::json& h, const char* key) {
  auto it = h.find(key);
  if (it == h.end() || !it->is_string()) return DataLoss(fmt::format("shipment header lacks string '{}'", key));
  return it->get<std::string>();
}

Result<uint64_t> HeaderU64(const nlohmann::json& h, const char* key) {
  auto it = h.find(key);
  if (it == h.end() || !it->is_number_unsigned()) {
    return DataLoss(fmt::format("shipment header lacks number '{}'", key));
  }
  return it->get<uint64_t>();
}

}  // namespace cfs::snapshot
