// Internal to src/wire: the codec of the snapshot messages, install_snapshot
// and install_snapshot_reply between servers and the operator's snapshot
// request and reply, called from codec.cc's decode() and encode().
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "raft/types.h"
#include "wire/messages.h"

namespace wire::snapshot_codec {

// Read the type's own fields into m, whose type, from, to and term are set
// (term >= 1 already checked for install_snapshot, a request). Throw
// fields::Invalid naming the field.
void decode_install_snapshot(const nlohmann::json& doc, raft::Message& m);
void decode_install_snapshot_reply(const nlohmann::json& doc, raft::Message& m);

std::string encode_install_snapshot(const raft::Message& m);
std::string encode_install_snapshot_reply(const raft::Message& m);

SnapshotReply decode_snapshot_reply(const nlohmann::json& doc, std::string src, std::string dest);

}  // namespace wire::snapshot_codec
