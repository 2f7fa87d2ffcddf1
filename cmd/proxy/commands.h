// The control protocol (docs/proxy.md, "Control protocol"): one JSON object
// per datagram in, one JSON object per datagram out. This file parses and
// executes one command against the LinkTable; it never throws and does no
// I/O itself (`journal` calls the ProxyStatus's write_journal), so
// tests/unit/proxy_test.cc can drive it directly.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <initializer_list>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "link_table.h"

namespace proxy {

// The largest reply that fits one UDP datagram.
inline constexpr std::size_t kMaxDatagramBytes = 65507;

// Facts the command handler reports but does not own.
struct ProxyStatus {
  std::uint64_t seed = 0;
  std::size_t queued = 0;       // datagrams waiting in the delay queue
  std::size_t queue_limit = 0;
  std::size_t relays = 0;       // open relay sockets
  std::size_t relay_limit = 0;
  // Writes the message journal to its file now (docs/proxy.md, "Message
  // journal"); empty when the journal is off. Returns the reply's fields
  // (path, records, evicted, total) or throws std::runtime_error.
  std::function<nlohmann::ordered_json()> write_journal;
};

struct CommandOutcome {
  bool ok = false;
  std::string reply;  // one line of JSON, no trailing newline
  std::string log;    // one line for the info log, e.g. "partition n1,n2 | n3"
};

namespace command_detail {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

// Thrown inside execute_command only; becomes {"ok":false,"error":...}.
struct CommandError {
  std::string what;
};

[[noreturn]] inline void fail(std::string what) { throw CommandError{std::move(what)}; }

inline std::string format_number(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", v);
  return buffer;
}

inline std::string join(const std::vector<std::string>& items, const char* separator) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += separator;
    out += items[i];
  }
  return out;
}

// Shows a bad value in an error without letting it grow the reply unboundedly.
inline std::string show(const json& v) {
  std::string text = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}

class Executor {
 public:
  Executor(const json& cmd, LinkTable& table, const ProxyStatus& status)
      : cmd_(cmd), table_(table), status_(status) {}

  CommandOutcome run(const std::string& name) {
    if (name == "ping") return ping();
    if (name == "set") return set();
    if (name == "clear") return clear();
    if (name == "partition") return partition();
    if (name == "block") return block(true);
    if (name == "unblock") return block(false);
    if (name == "heal") return heal();
    if (name == "reset") return reset();
    if (name == "stats") return stats();
    if (name == "state") return state();
    if (name == "journal") return journal();
    fail("unknown cmd '" + name +
         "' (known: ping, set, clear, partition, block, unblock, heal, reset, stats, state, journal)");
  }

 private:
  // Unknown fields are errors, so a typo ("delay" for "delay_ms") never
  // silently becomes a perfect link. "cmd" and "id" are always allowed; an
  // "id" is echoed in the reply.
  void allow(std::initializer_list<const char*> fields) {
    for (const auto& [key, value] : cmd_.items()) {
      if (key == "cmd" || key == "id") continue;
      bool known = false;
      for (const char* f : fields) known = known || key == f;
      if (!known) {
        std::vector<std::string> names;
        for (const char* f : fields) names.emplace_back(f);
        fail("unknown field '" + key + "' for cmd '" + cmd_["cmd"].get<std::string>() + "'" +
             (names.empty() ? std::string(" (it takes no fields)") : " (allowed: " + join(names, ", ") + ")"));
      }
    }
  }

  std::string nodes_hint() const {
    return "known nodes: " + join(table_.node_ids(), ", ") + "; also \"client\" and \"*\"";
  }

  int endpoint_field(const char* field) {
    const auto it = cmd_.find(field);
    if (it == cmd_.end()) fail(std::string("missing field '") + field + "'");
    if (!it->is_string()) fail(std::string("field '") + field + "' must be a string, got " + show(*it));
    const std::string name = it->get<std::string>();
    const auto e = table_.endpoint(name);
    if (!e) fail("unknown node '" + name + "' in field '" + field + "' (" + nodes_hint() + ")");
    return *e;
  }

  double number_field(const char* field, double max) {
    const auto it = cmd_.find(field);
    if (it == cmd_.end()) return 0.0;
    if (!it->is_number()) {
      fail(std::string("field '") + field + "' must be a number in [0," + format_number(max) + "], got " + show(*it));
    }
    const double v = it->get<double>();
    if (!std::isfinite(v) || v < 0.0 || v > max) {
      fail(std::string("field '") + field + "' must be a number in [0," + format_number(max) + "], got " + show(*it));
    }
    return v;
  }

  bool bool_field(const char* field) {
    const auto it = cmd_.find(field);
    if (it == cmd_.end()) return false;
    if (!it->is_boolean()) fail(std::string("field '") + field + "' must be true or false, got " + show(*it));
    return it->get<bool>();
  }

  static CommandOutcome ok(ojson reply, std::string log) {
    CommandOutcome out;
    out.ok = true;
    out.reply = reply.dump(-1, ' ', false, json::error_handler_t::replace);
    out.log = std::move(log);
    return out;
  }
  static ojson ok_reply() { return ojson{{"ok", true}}; }

  ojson node_list() const {
    ojson nodes = ojson::array();
    for (const auto& id : table_.node_ids()) nodes.push_back(id);
    return nodes;
  }

  static ojson settings_json(const LinkSettings& s) {
    return ojson{{"drop", s.drop},
                 {"delay_ms", s.delay_ms},
                 {"jitter_ms", s.jitter_ms},
                 {"duplicate", s.duplicate},
                 {"blocked", s.blocked}};
  }

  static std::string settings_text(const LinkSettings& s) {
    return "drop=" + format_number(s.drop) + " delay=" + format_number(s.delay_ms) + "ms jitter=" +
           format_number(s.jitter_ms) + "ms duplicate=" + format_number(s.duplicate) +
           (s.blocked ? " blocked" : "");
  }

  std::string group_text(const std::vector<int>& group) const {
    std::vector<std::string> names;
    for (const int e : group) names.push_back(table_.name(e));
    return join(names, ",");
  }

  ojson partition_json() const {
    if (!table_.partition()) return nullptr;
    ojson groups = ojson::array();
    for (const auto& group : *table_.partition()) {
      ojson g = ojson::array();
      for (const int e : group) g.push_back(table_.name(e));
      groups.push_back(std::move(g));
    }
    return groups;
  }

  std::string partition_text() const {
    std::vector<std::string> groups;
    for (const auto& group : *table_.partition()) groups.push_back(group_text(group));
    return groups.empty() ? std::string("(no groups: every node isolated)") : join(groups, " | ");
  }

  CommandOutcome ping() {
    allow({});
    ojson reply = ok_reply();
    reply["nodes"] = node_list();
    return ok(std::move(reply), "ping");
  }

  CommandOutcome set() {
    allow({"from", "to", "drop", "delay_ms", "jitter_ms", "duplicate", "blocked"});
    const int from = endpoint_field("from");
    const int to = endpoint_field("to");
    LinkSettings s;
    s.drop = number_field("drop", 1.0);
    s.delay_ms = number_field("delay_ms", kMaxDelayMs);
    s.jitter_ms = number_field("jitter_ms", kMaxDelayMs);
    s.duplicate = number_field("duplicate", 1.0);
    s.blocked = bool_field("blocked");
    table_.set_rule(from, to, s);
    ojson reply = ok_reply();
    reply["link"] = table_.link_name(from, to);
    reply["rule"] = settings_json(s);
    return ok(std::move(reply), "set " + table_.link_name(from, to) + " " + settings_text(s));
  }

  CommandOutcome clear() {
    allow({"from", "to"});
    const int from = endpoint_field("from");
    const int to = endpoint_field("to");
    const bool removed = table_.clear_rule(from, to);
    ojson reply = ok_reply();
    reply["removed"] = removed;
    return ok(std::move(reply), "clear " + table_.link_name(from, to) + (removed ? "" : " (no such rule)"));
  }

  CommandOutcome partition() {
    allow({"groups"});
    const auto it = cmd_.find("groups");
    if (it == cmd_.end()) fail("missing field 'groups'");
    const char* shape = "field 'groups' must be an array of arrays of node ids, e.g. [[\"n1\",\"n2\"],[\"n3\"]]";
    if (!it->is_array()) fail(std::string(shape) + ", got " + show(*it));
    std::vector<std::vector<int>> groups;
    for (std::size_t g = 0; g < it->size(); ++g) {
      const json& group = (*it)[g];
      if (!group.is_array()) fail(std::string(shape) + ", got " + show(group) + " as groups[" + std::to_string(g) + "]");
      std::vector<int> members;
      for (const json& member : group) {
        const std::string where = "groups[" + std::to_string(g) + "]";
        if (!member.is_string()) fail("field '" + where + "' must hold node ids (strings), got " + show(member));
        const std::string name = member.get<std::string>();
        const auto e = table_.endpoint(name);
        if (!e || !table_.is_node(*e)) {
          if (e) {
            fail("'" + name + "' in field '" + where +
                 "' is not a node: partitions cut node-to-node links only (use block for clients)");
          }
          fail("unknown node '" + name + "' in field '" + where + "' (known nodes: " +
               join(table_.node_ids(), ", ") + ")");
        }
        members.push_back(*e);
      }
      groups.push_back(std::move(members));
    }
    table_.set_partition(std::move(groups));
    ojson reply = ok_reply();
    reply["partition"] = partition_json();
    return ok(std::move(reply), "partition " + partition_text());
  }

  CommandOutcome block(bool on) {
    allow({"from", "to"});
    const int from = endpoint_field("from");
    const int to = endpoint_field("to");
    ojson reply = ok_reply();
    if (on) {
      table_.block(from, to);
      reply["blocked"] = table_.link_name(from, to);
      return ok(std::move(reply), "block " + table_.link_name(from, to));
    }
    const bool removed = table_.unblock(from, to);
    reply["removed"] = removed;
    return ok(std::move(reply), "unblock " + table_.link_name(from, to) + (removed ? "" : " (was not blocked)"));
  }

  CommandOutcome heal() {
    allow({});
    table_.heal();
    return ok(ok_reply(), "heal");
  }

  CommandOutcome reset() {
    allow({});
    table_.reset();
    return ok(ok_reply(), "reset");
  }

  static ojson counters_json(const LinkCounters& c) {
    return ojson{{"received", c.received},     {"forwarded", c.forwarded}, {"dropped", c.dropped},
                 {"delayed", c.delayed},       {"duplicated", c.duplicated}, {"blocked", c.blocked},
                 {"overflow", c.overflow},     {"send_failed", c.send_failed},
                 {"forwarded_bytes", c.forwarded_bytes}};
  }

  static bool is_zero(const LinkCounters& c) {
    return c.received == 0 && c.forwarded == 0 && c.dropped == 0 && c.delayed == 0 && c.duplicated == 0 &&
           c.blocked == 0 && c.overflow == 0 && c.send_failed == 0;
  }

  // Every link a datagram can travel: node>node (i != j), client>node and
  // node>client; a self link only if it saw traffic. If that does not fit
  // one datagram, only links with nonzero counters.
  ojson links_json(bool nonzero_only) const {
    ojson links = ojson::object();
    const int n = table_.node_count();
    for (int from = 0; from <= n; ++from) {
      for (int to = 0; to <= n; ++to) {
        if (from == n && to == n) continue;
        const LinkCounters& c = table_.counters(from, to);
        if ((from == to || nonzero_only) && is_zero(c)) continue;
        links[table_.link_name(from, to)] = counters_json(c);
      }
    }
    return links;
  }

  CommandOutcome stats() {
    allow({"reset"});
    const bool reset = bool_field("reset");
    ojson reply = ok_reply();
    reply["links"] = links_json(false);
    reply["queued"] = status_.queued;
    std::string text = reply.dump();
    if (text.size() > kMaxDatagramBytes) {
      reply["links"] = links_json(true);
      reply["omitted_zero_links"] = true;
      if (reply.dump().size() > kMaxDatagramBytes) fail("stats do not fit one datagram");
    }
    if (reset) table_.reset_counters();
    return ok(std::move(reply), reset ? "stats reset" : "stats");
  }

  CommandOutcome state() {
    allow({});
    ojson reply = ok_reply();
    reply["nodes"] = node_list();
    ojson rules = ojson::array();
    ojson blocks = ojson::array();
    const int ends = table_.node_count() + 2;
    for (int from = 0; from < ends; ++from) {
      for (int to = 0; to < ends; ++to) {
        if (const LinkSettings* r = table_.rule(from, to)) {
          ojson rule{{"from", table_.name(from)}, {"to", table_.name(to)}};
          const ojson settings = settings_json(*r);
          for (const auto& [k, v] : settings.items()) rule[k] = v;
          rules.push_back(std::move(rule));
        }
        if (table_.has_block(from, to)) blocks.push_back(ojson{{"from", table_.name(from)}, {"to", table_.name(to)}});
      }
    }
    reply["rules"] = std::move(rules);
    reply["partition"] = partition_json();
    reply["blocks"] = std::move(blocks);
    reply["seed"] = status_.seed;
    reply["queued"] = status_.queued;
    reply["queue_limit"] = status_.queue_limit;
    reply["relays"] = status_.relays;
    reply["relay_limit"] = status_.relay_limit;
    if (reply.dump().size() > kMaxDatagramBytes) fail("state does not fit one datagram");
    return ok(std::move(reply), "state");
  }

  CommandOutcome journal() {
    allow({});
    if (!status_.write_journal) fail("the journal is off: start the proxy with --journal PATH");
    ojson reply = ok_reply();
    ojson written;
    try {
      written = status_.write_journal();
    } catch (const std::runtime_error& e) {
      fail(std::string("cannot write the journal: ") + e.what());
    }
    for (const auto& [k, v] : written.items()) reply[k] = v;
    return ok(std::move(reply), "journal written (" + written["records"].dump() + " records)");
  }

  const json& cmd_;
  LinkTable& table_;
  const ProxyStatus& status_;
};

inline std::string error_reply(const std::string& why, const json* id) {
  ojson reply{{"ok", false}, {"error", why}};
  if (id != nullptr) reply["id"] = *id;
  return reply.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace command_detail

// Parses and executes one control datagram. Never throws.
inline CommandOutcome execute_command(std::string_view datagram, LinkTable& table, const ProxyStatus& status) {
  using namespace command_detail;
  CommandOutcome out;
  json cmd;
  const json* id = nullptr;
  try {
    try {
      cmd = json::parse(datagram);
    } catch (const json::parse_error& e) {
      std::string what = e.what();
      if (const auto end = what.find("] "); what.starts_with("[json.") && end != std::string::npos) {
        what = what.substr(end + 2);
      }
      fail("malformed JSON: " + what);
    }
    if (!cmd.is_object()) fail("expected a JSON object such as {\"cmd\":\"ping\"}, got " + show(cmd));
    // An "id" of any JSON type is echoed back (if short) so callers can match replies.
    if (const auto it = cmd.find("id"); it != cmd.end() && show(*it).size() < 80) id = &*it;
    const auto name = cmd.find("cmd");
    if (name == cmd.end()) fail("missing field 'cmd'");
    if (!name->is_string()) fail("field 'cmd' must be a string, got " + show(*name));
    out = Executor(cmd, table, status).run(name->get<std::string>());
    if (id != nullptr) {
      // Echo the caller's id; the reply was built without it.
      ojson reply = ojson::parse(out.reply);
      reply["id"] = *id;
      out.reply = reply.dump(-1, ' ', false, json::error_handler_t::replace);
    }
    return out;
  } catch (const CommandError& e) {
    out = CommandOutcome{};
    out.reply = error_reply(e.what, id);
    out.log = "error: " + e.what;
  } catch (const std::exception& e) {
    out = CommandOutcome{};
    out.reply = error_reply(std::string("internal error: ") + e.what(), nullptr);
    out.log = std::string("error: internal error: ") + e.what();
  }
  return out;
}

}  // namespace proxy
