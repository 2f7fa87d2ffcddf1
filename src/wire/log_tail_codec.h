// Internal to src/wire: the codec of the dashboard's log_tail request and
// its reply (docs/PROTOCOL.md part 2), called from codec.cc's decode().
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "wire/messages.h"

namespace wire::log_tail_codec {

// Throw fields::Invalid naming the field.
LogTailRequest decode_request(const nlohmann::json& doc, std::string src, std::string dest);
LogTailReply decode_reply(const nlohmann::json& doc, std::string src, std::string dest);

}  // namespace wire::log_tail_codec
