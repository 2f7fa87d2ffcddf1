// The client program's output: one function per kind of answer, printing
// text (or one JSON object with --json) and returning the exit code. Exit
// codes are part of the interface (scripts and the harness branch on them);
// main.cc's help text lists them.
#pragma once

#include <string>
#include <vector>

#include "client/kv_client.h"

namespace client_cli {

constexpr int kExitOk = 0;
constexpr int kExitCasFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnavailable = 3;
constexpr int kExitRejected = 4;
constexpr int kExitConfig = 5;

// A get/set/cas/delete; deadline_ms is named when the cluster was unavailable.
int report(bool json, int deadline_ms, const std::string& op, const client::Result& r);
// The status table (or array): exit 3 when no server is up.
int print_status(bool json, const std::vector<client::ServerStatus>& statuses);
// "nK: snapshot at index N"; exit 3 without a reply, 4 when the node took none.
int print_snapshot(bool json, int deadline_ms, const client::SnapshotResult& r);

}  // namespace client_cli
