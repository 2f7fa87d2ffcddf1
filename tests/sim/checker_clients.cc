// The checks on what clients see: proposals, the state machine against the
// reference dictionary (exactly once), the answers to writes, read points.
#include <algorithm>

#include "checker.h"

namespace sim {

namespace {

std::string show(const kv::Result& r) {
  std::string s = r.ok ? "ok" : r.error;
  s += r.value ? " '" + *r.value + "'" : std::string(" (no value)");
  return s;
}

std::string show(const std::optional<std::string>& v) { return v ? "'" + *v + "'" : std::string("absent"); }

}  // namespace

void Checker::on_propose(const Node& n, const std::string& data, std::optional<raft::Index> index) {
  if (!index) return;
  const raft::Raft& core = n.core();
  if (core.role() != raft::Role::Leader) {
    fail("only a leader accepts proposals (§5.3)", who(n) + " accepted '" + data + "' as " + raft::to_string(core.role()));
  }
  if (*index != core.log().last_index() || core.log().at(*index).data != data ||
      core.log().at(*index).term != core.current_term()) {
    fail("a proposal is appended at the end of the leader's log, in its term (§5.3)",
         who(n) + " returned index " + std::to_string(*index) + " for '" + data + "'; its log ends with " +
             (core.log().last_index() ? show(core.log().at(core.log().last_index())) : std::string("nothing")));
  }
  // §8: a retry of a command the leader's session already applied is
  // answered from the session; proposing it again would lean on the state
  // machine's dedup alone (the harness's no_dedup mutant removes both).
  if (auto command = kv::decode(data)) {
    const std::uint64_t applied = n.driver->state_machine().last_seq(command->client_id);
    if (command->seq <= applied) {
      fail("a leader never proposes a (client, seq) its session already applied (§8)",
           who(n) + " proposed " + command->client_id + " seq " + std::to_string(command->seq) +
               " at index " + std::to_string(*index) + " although its session has applied up to seq " +
               std::to_string(applied));
    }
  }
  ++proposals_[data].proposed;
}

// §8: a ReadIndex read is linearizable if its read index covers every write
// that completed before the read began. A leader cut off from the majority
// (pitfall 11) or a new leader that has not yet committed an entry of its
// term (pitfall 9) would answer with too small an index.
void Checker::on_read_state(const Node& n, const raft::ReadState& read, const IssuedRead& issued) {
  // Only a leader can establish a read point; a read that reached a
  // follower must come back in failed_reads. (A read issued to the leader
  // may be answered after it stepped down: the point was confirmed while it
  // led.)
  if (!issued.issued_as_leader) {
    fail("only a leader answers ReadIndex requests (§8)",
         who(n) + " answered read ctx " + std::to_string(read.ctx) + " (index " + std::to_string(read.index) +
             "), which it received at tick " + std::to_string(issued.tick) + " while not leader");
  }
  if (read.index < issued.acked_floor) {
    fail("linearizable reads: a read sees every write acknowledged before it began (§8, pitfalls 9 and 11)",
         who(n) + " answered read ctx " + std::to_string(read.ctx) + " (issued at tick " +
             std::to_string(issued.tick) + ") with read index " + std::to_string(read.index) + ", but the write at index " +
             std::to_string(issued.acked_floor) + " had been acknowledged before");
  }
  if (read.index > n.core().commit_index()) {
    fail("a read index is a committed index (§8)",
         who(n) + " answered read ctx " + std::to_string(read.ctx) + " with read index " + std::to_string(read.index) +
             " above its commit index " + std::to_string(n.core().commit_index()));
  }
}

// §8: the state machine applies each (client, seq) at most once: a retry
// of a command already applied (a second copy in the log, committed by a
// later leader) must change nothing and return the first result. Compared
// with the checker's reference, which applies the same entries independently.
void Checker::on_kv_apply(const Node& n, const raft::Entry& e, const kv::Command* command,
                          const kv::Result* result) {
  if (command == nullptr) {
    if (e.type == raft::EntryType::Command) {
      fail("every committed command is one the state machine can decode",
           who(n) + " skipped " + show(e) + ": it holds no valid command");
    }
    return;
  }
  Shadow& s = shadows_[n.index];
  const KvModel::Outcome expected = s.model.apply(*command);
  // Formatted only for a report: this runs for every applied entry.
  auto what = [&] {
    return who(n) + " applied " + show(e) + " (" + command->client_id + " seq " + std::to_string(command->seq) + ")";
  };
  if (expected.duplicate) {
    if (*result != expected.result) {
      fail("exactly once: a retried (client, seq) gets the result of its first application (§8)",
           what() + ", a duplicate, and returned " + show(*result) + "; the first application returned " +
               show(expected.result));
    }
  } else if (*result != expected.result) {
    fail("the state machine gives the result the sequential specification gives (PROTOCOL.md)",
         what() + " and returned " + show(*result) + "; expected " + show(expected.result));
  }
  const std::optional<std::string> holds = n.driver->state_machine().get(command->key);
  if (holds != s.model.get(command->key)) {
    fail(expected.duplicate
             ? "exactly once: each (client, seq) is applied at most once by the state machine (§8)"
             : "the state machine holds what the sequential specification gives (PROTOCOL.md)",
         what() + (expected.duplicate ? ", a duplicate," : "") + " and now holds " + show(holds) + " at key '" +
             command->key + "'; expected " + show(s.model.get(command->key)));
  }
  if (expected.duplicate) return;
  auto [it, inserted] = first_applies_.try_emplace({command->client_id, command->seq},
                                                   FirstApply{e.index, e.term, e.data, *result, false});
  if (!inserted && it->second.index != e.index) {
    fail("state machine safety: a (client, seq) takes effect at the same index on every replica (§5.4.3)",
         what() + " first at index " + std::to_string(e.index) + "; elsewhere it took effect at index " +
             std::to_string(it->second.index));
  }
}

// A final answer to a write is sent only after the write took effect
// (Figure 2: a leader answers once the entry is applied, so committed), and
// every answer to it, first or retried, is that one result (§8). The first
// such answer makes the write acknowledged: later leaders must hold it, and
// later reads must see it.
void Checker::on_write_reply(int node, const std::string& client, const wire::ClientReply& reply) {
  auto it = first_applies_.find({client, reply.seq});
  auto what = [&] {
    return node_name(node) + " answered " + client + " seq " + std::to_string(reply.seq) + " with " +
           show(kv::Result{reply.ok, reply.value, reply.error});
  };
  if (it == first_applies_.end()) {
    fail("a write is acknowledged only once it is committed and applied (Figure 2, §5.3)",
         what() + ", but no replica has applied that command (highest committed index " +
             std::to_string(committed_.size() - 1) + ")");
  }
  FirstApply& first = it->second;
  if (reply.ok != first.result.ok || reply.value != first.result.value || reply.error != first.result.error) {
    fail("exactly once: every answer to a (client, seq) is the result of its one application (§8)",
         what() + "; it took effect at index " + std::to_string(first.index) + " with result " + show(first.result));
  }
  if (first.acked) return;
  first.acked = true;
  acked_.push_back(Acked{first.index, first.term, first.data});
  max_acked_index_ = std::max(max_acked_index_, first.index);
  trace_.event(EventKind::Ack, node, first.index, first.term, 0, 0, first.data);
}

std::optional<raft::Index> Checker::first_applied_index(const std::string& client, std::uint64_t seq) const {
  auto it = first_applies_.find({client, seq});
  if (it == first_applies_.end()) return std::nullopt;
  return it->second.index;
}

}  // namespace sim
