// KvClient against scripted fake servers on 127.0.0.1: redirects, timeouts,
// deadlines, stale replies and status. Timeouts are small so each test
// finishes well under two seconds.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "client/kv_client.h"
#include "net/udp_socket.h"
#include "wire/codec.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

net::Endpoint loopback_any_port() {
  net::Endpoint e;
  e.ip = htonl(INADDR_LOOPBACK);
  e.port = 0;
  return e;
}

config::ServerRef ref_for(const std::string& id, const net::UdpSocket& socket) {
  config::ServerRef ref;
  ref.id = id;
  ref.address.host = "127.0.0.1";
  ref.address.port = ntohs(socket.local_endpoint().port);
  return ref;
}

// A server on its own thread that hands every decoded datagram to a script.
class FakeServer {
 public:
  // Called on the server thread with each client_request; may reply through `self`.
  using Script = std::function<void(FakeServer& self, const wire::ClientRequest&, const net::Endpoint&)>;

  FakeServer(std::string id, Script script)
      : id_(std::move(id)), script_(std::move(script)), socket_(loopback_any_port()) {
    thread_ = std::thread([this] { loop(); });
  }
  ~FakeServer() {
    stop_ = true;
    thread_.join();
  }

  config::ServerRef ref() const { return ref_for(id_, socket_); }
  const std::string& id() const { return id_; }

  std::vector<std::uint64_t> seqs() {
    std::lock_guard lock(mutex_);
    return seqs_;
  }

  // Replies from this server to `to` for `request`.
  void reply(const net::Endpoint& to, const wire::ClientRequest& request, wire::ClientReply r) {
    r.src = id_;
    r.dest = request.src;
    if (r.seq == 0) r.seq = request.seq;
    send(to, wire::encode(r));
  }
  void send(const net::Endpoint& to, const std::string& datagram) { socket_.send_to(to, datagram); }

  // Answer status requests with this (src/dest filled in); unset: ignore them.
  void set_status(wire::StatusReply status) {
    std::lock_guard lock(mutex_);
    status_ = std::move(status);
  }

  // Called on the server thread with each snapshot request; unset: ignore them.
  using SnapshotScript = std::function<void(FakeServer& self, const wire::SnapshotRequest&, const net::Endpoint&)>;
  void set_snapshot_script(SnapshotScript script) {
    std::lock_guard lock(mutex_);
    snapshot_script_ = std::move(script);
  }
  int snapshot_requests() {
    std::lock_guard lock(mutex_);
    return snapshot_requests_;
  }

 private:
  void loop() {
    std::string buffer;
    while (!stop_) {
      net::Endpoint from;
      if (!socket_.receive(buffer, from, 10ms)) continue;
      auto decoded = wire::decode(buffer);
      if (auto* request = std::get_if<wire::ClientRequest>(&decoded)) {
        {
          std::lock_guard lock(mutex_);
          seqs_.push_back(request->seq);
        }
        if (script_) script_(*this, *request, from);
      } else if (auto* status = std::get_if<wire::StatusRequest>(&decoded)) {
        std::optional<wire::StatusReply> answer;
        {
          std::lock_guard lock(mutex_);
          answer = status_;
        }
        if (answer) {
          answer->src = id_;
          answer->dest = status->src;
          answer->id = id_;
          send(from, wire::encode(*answer));
        }
      } else if (auto* snapshot = std::get_if<wire::SnapshotRequest>(&decoded)) {
        SnapshotScript script;
        {
          std::lock_guard lock(mutex_);
          ++snapshot_requests_;
          script = snapshot_script_;
        }
        if (script) script(*this, *snapshot, from);
      }
    }
  }

  std::string id_;
  Script script_;
  net::UdpSocket socket_;
  std::mutex mutex_;
  std::vector<std::uint64_t> seqs_;
  std::optional<wire::StatusReply> status_;
  SnapshotScript snapshot_script_;
  int snapshot_requests_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;  // last: starts after everything it uses exists
};

config::ClientConfig make_config(const std::vector<config::ServerRef>& servers, int timeout_ms,
                                 int deadline_ms) {
  config::ClientConfig c;
  c.id = "ctest";
  c.servers = servers;
  c.params.request_timeout_ms = timeout_ms;
  c.params.deadline_ms = deadline_ms;
  return c;
}

wire::ClientReply ok_reply(std::optional<std::string> value) {
  wire::ClientReply r;
  r.ok = true;
  r.value = std::move(value);
  return r;
}

wire::ClientReply error_reply(const std::string& error, const std::string& leader = "",
                              const std::string& message = "") {
  wire::ClientReply r;
  r.ok = false;
  r.error = error;
  r.leader = leader;
  r.message = message;
  return r;
}

// Echoes set values back; gets read a fixed value.
void answer_ok(FakeServer& self, const wire::ClientRequest& req, const net::Endpoint& from) {
  self.reply(from, req, ok_reply(req.op == wire::Op::Get ? std::optional<std::string>("v")
                                                         : std::optional<std::string>(req.value)));
}

TEST(KvClient, RedirectRetriesSameSeqAtHintedLeaderAtOnce) {
  FakeServer n1("n1", [](FakeServer& self, const wire::ClientRequest& req, const net::Endpoint& from) {
    self.reply(from, req, error_reply("not_leader", "n2"));
  });
  FakeServer n2("n2", answer_ok);
  client::KvClient kv(make_config({n1.ref(), n2.ref()}, 500, 2000), "n1", std::nullopt, 7);

  const auto r = kv.set("k", "hello");
  ASSERT_EQ(r.outcome, client::Outcome::Ok);
  EXPECT_EQ(r.value, "hello");
  EXPECT_EQ(r.node, "n2");
  EXPECT_EQ(r.attempts, 2);
  EXPECT_LT(r.latency, 250ms) << "the redirect must not wait for the request timeout";
  ASSERT_EQ(n1.seqs().size(), 1u);
  ASSERT_EQ(n2.seqs().size(), 1u);
  EXPECT_EQ(n1.seqs()[0], n2.seqs()[0]) << "a redirected retry reuses the seq";
  EXPECT_EQ(r.seq, n2.seqs()[0]);

  // The next command goes straight to the remembered leader, with the next seq.
  const auto r2 = kv.get("k");
  ASSERT_EQ(r2.outcome, client::Outcome::Ok);
  EXPECT_EQ(r2.node, "n2");
  EXPECT_EQ(r2.attempts, 1);
  EXPECT_EQ(n1.seqs().size(), 1u);
  ASSERT_EQ(n2.seqs().size(), 2u);
  EXPECT_EQ(n2.seqs()[1], n2.seqs()[0] + 1);
  EXPECT_EQ(kv.known_leader(), "n2");
}

TEST(KvClient, TimeoutRetriesSameSeqAtNextServer) {
  FakeServer n1("n1", nullptr);  // receives, never answers
  FakeServer n2("n2", answer_ok);
  client::KvClient kv(make_config({n1.ref(), n2.ref()}, 100, 1500), "n1", std::nullopt, 7);

  const auto r = kv.set("k", "x");
  ASSERT_EQ(r.outcome, client::Outcome::Ok);
  EXPECT_EQ(r.node, "n2");
  EXPECT_EQ(r.attempts, 2);
  EXPECT_GE(r.latency, 100ms);
  EXPECT_EQ((std::vector<std::string>{"n1", "n2"}), r.tried);
  ASSERT_EQ(n1.seqs().size(), 1u);
  ASSERT_EQ(n2.seqs().size(), 1u);
  EXPECT_EQ(n1.seqs()[0], n2.seqs()[0]);
}

TEST(KvClient, NotLeaderWithoutHintPausesThenTriesNextServer) {
  FakeServer n1("n1", [](FakeServer& self, const wire::ClientRequest& req, const net::Endpoint& from) {
    self.reply(from, req, error_reply("not_leader"));
  });
  FakeServer n2("n2", answer_ok);
  client::KvClient kv(make_config({n1.ref(), n2.ref()}, 500, 2000), "n1", std::nullopt, 7);

  const auto r = kv.del("k");
  ASSERT_EQ(r.outcome, client::Outcome::Ok);
  EXPECT_EQ(r.node, "n2");
  EXPECT_EQ(r.attempts, 2);
  EXPECT_GE(r.latency, 20ms) << "pauses during an election instead of spinning";
  EXPECT_LT(r.latency, 400ms) << "but does not wait for the request timeout";
  EXPECT_EQ(n1.seqs(), n2.seqs());
}

TEST(KvClient, DeadlineWithNoAnswerIsUnavailable) {
  FakeServer n1("n1", nullptr);
  FakeServer n2("n2", nullptr);
  client::KvClient kv(make_config({n1.ref(), n2.ref()}, 50, 300), std::nullopt, std::nullopt, 7);

  const auto r = kv.get("k");
  EXPECT_EQ(r.outcome, client::Outcome::Unavailable);
  EXPECT_GE(r.latency, 300ms);
  EXPECT_LT(r.latency, 900ms);
  EXPECT_GE(r.attempts, 5);  // one per 50 ms window
  EXPECT_EQ(r.tried.size(), 2u);
  // Every retry, at either server, used the same seq.
  std::vector<std::uint64_t> all = n1.seqs();
  const auto more = n2.seqs();
  all.insert(all.end(), more.begin(), more.end());
  ASSERT_FALSE(all.empty());
  for (const auto seq : all) EXPECT_EQ(seq, r.seq);
}

TEST(KvClient, StaleAndForeignRepliesAreIgnored) {
  FakeServer n1("n1", [](FakeServer& self, const wire::ClientRequest& req, const net::Endpoint& from) {
    auto stale = ok_reply("stale");
    stale.seq = req.seq - 1;  // a late duplicate answer to the previous command
    self.reply(from, req, stale);
    wire::StatusReply status;  // right sender, wrong type
    status.src = "n1";
    status.dest = req.src;
    status.id = "n1";
    status.role = "leader";
    self.send(from, wire::encode(status));
    self.send(from, "not json at all");
    std::this_thread::sleep_for(20ms);
    self.reply(from, req, ok_reply("fresh"));
  });
  client::KvClient kv(make_config({n1.ref()}, 500, 2000), std::nullopt, std::nullopt, 7);

  // Seqs start at 1: the second command is the first with a previous seq
  // whose late answer could be mistaken for its own.
  ASSERT_EQ(kv.get("warm-up").outcome, client::Outcome::Ok);
  const auto r = kv.get("k");
  ASSERT_EQ(r.outcome, client::Outcome::Ok);
  EXPECT_EQ(r.seq, 2u);
  EXPECT_EQ(r.value, "fresh");
  EXPECT_EQ(r.attempts, 1);
}

TEST(KvClient, EveryClientIsANewSessionStartingAtSeqOne) {
  FakeServer n1("n1", [](FakeServer& self, const wire::ClientRequest& req, const net::Endpoint& from) {
    self.reply(from, req, ok_reply("v"));
  });
  const auto config = make_config({n1.ref()}, 500, 2000);
  client::KvClient a(config), b(config);
  EXPECT_NE(a.id(), b.id()) << "two clients sharing a config must not share a session";
  EXPECT_EQ(a.id().rfind(config.id + "-", 0), 0u) << "the config id is the prefix: " << a.id();
  EXPECT_TRUE(wire::is_valid_client_id(a.id())) << a.id();
  EXPECT_EQ(a.get("k").seq, 1u);
  client::KvClient long_prefix(config, std::nullopt, std::string(64, 'p'));
  EXPECT_TRUE(wire::is_valid_client_id(long_prefix.id())) << long_prefix.id();
}

TEST(KvClient, CasFailedAndRejectedAreReported) {
  FakeServer n1("n1", [](FakeServer& self, const wire::ClientRequest& req, const net::Endpoint& from) {
    if (req.op == wire::Op::Cas) {
      auto r = error_reply("cas_failed");
      r.value = std::nullopt;
      self.reply(from, req, r);
    } else {
      self.reply(from, req, error_reply("bad_request", "", "key must not be empty"));
    }
  });
  client::KvClient kv(make_config({n1.ref()}, 500, 2000), std::nullopt, std::nullopt, 7);

  const auto cas = kv.cas("k", "old", "new");
  EXPECT_EQ(cas.outcome, client::Outcome::CasFailed);
  EXPECT_FALSE(cas.value.has_value());

  const auto bad = kv.set("k", "v");  // the fake rejects any non-cas
  EXPECT_EQ(bad.outcome, client::Outcome::Rejected);
  EXPECT_EQ(bad.error, "bad_request");
  EXPECT_EQ(bad.message, "key must not be empty");
  EXPECT_EQ(bad.seq, cas.seq + 1);
}

TEST(KvClient, StatusAllReportsDownServer) {
  FakeServer n1("n1", nullptr);
  wire::StatusReply status;
  status.role = "leader";
  status.term = 3;
  status.leader = "n1";
  status.commit_index = 7;
  status.last_applied = 6;
  status.last_log_index = 8;
  n1.set_status(status);
  net::UdpSocket silent(loopback_any_port());  // holds the port; never reads
  client::KvClient kv(make_config({n1.ref(), ref_for("n2", silent)}, 200, 1000), std::nullopt,
                      std::nullopt, 7);

  const auto start = Clock::now();
  const auto statuses = kv.status_all();
  const auto elapsed = Clock::now() - start;
  ASSERT_EQ(statuses.size(), 2u);
  EXPECT_EQ(statuses[0].id, "n1");
  EXPECT_TRUE(statuses[0].up);
  EXPECT_EQ(statuses[0].role, "leader");
  EXPECT_EQ(statuses[0].term, 3u);
  EXPECT_EQ(statuses[0].leader, "n1");
  EXPECT_EQ(statuses[0].commit_index, 7u);
  EXPECT_EQ(statuses[0].last_applied, 6u);
  EXPECT_EQ(statuses[0].last_log_index, 8u);
  EXPECT_EQ(statuses[1].id, "n2");
  EXPECT_FALSE(statuses[1].up);
  EXPECT_GE(elapsed, 200ms);  // waited the request timeout for n2
  EXPECT_LT(elapsed, 600ms);  // one round only
  EXPECT_EQ(kv.known_leader(), "n1");
}

TEST(KvClient, StatusAllReportsSnapshotIndexOnlyWhenTheNodeDoes) {
  FakeServer n1("n1", nullptr);
  FakeServer n2("n2", nullptr);
  wire::StatusReply status;
  status.role = "follower";
  status.snapshot_index = 40;
  n1.set_status(status);
  status.snapshot_index = 0;
  status.has_snapshot_index = false;  // encoded without the field: a node without snapshots
  n2.set_status(status);
  client::KvClient kv(make_config({n1.ref(), n2.ref()}, 300, 1000), std::nullopt, std::nullopt, 7);
  const auto statuses = kv.status_all();
  ASSERT_EQ(statuses.size(), 2u);
  ASSERT_TRUE(statuses[0].up && statuses[1].up);
  EXPECT_EQ(statuses[0].snapshot_index, std::optional<std::uint64_t>(40));
  EXPECT_EQ(statuses[1].snapshot_index, std::nullopt);
}

TEST(KvClient, SnapshotAsksOneServerAndWaitsForItsReply) {
  FakeServer n1("n1", nullptr);
  FakeServer n2("n2", nullptr);
  n2.set_snapshot_script([](FakeServer& self, const wire::SnapshotRequest& request, const net::Endpoint& from) {
    // Noise first: another server's reply, and a late client_reply.
    self.send(from, wire::encode(wire::SnapshotReply{"n1", request.src, true, 999, ""}));
    self.send(from, wire::encode(wire::ClientReply{"n2", request.src, 1, true, "v", "", "", ""}));
    std::this_thread::sleep_for(50ms);  // taking it takes a while
    self.send(from, wire::encode(wire::SnapshotReply{"n2", request.src, true, 1200, ""}));
  });
  client::KvClient kv(make_config({n1.ref(), n2.ref()}, 20, 1000), std::nullopt, std::nullopt, 7);
  const client::SnapshotResult r = kv.snapshot("n2");
  EXPECT_TRUE(r.answered);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.node, "n2");
  EXPECT_EQ(r.snapshot_index, 1200u);
  EXPECT_GE(r.latency, 50ms);  // past the 20 ms request timeout: the deadline is what counts
  EXPECT_EQ(n2.snapshot_requests(), 1);  // sent once, not retried
  EXPECT_EQ(n1.snapshot_requests(), 0);

  n1.set_snapshot_script([](FakeServer& self, const wire::SnapshotRequest& request, const net::Endpoint& from) {
    self.send(from, wire::encode(wire::SnapshotReply{self.id(), request.src, false, 7, "disk full: data/n1"}));
  });
  const client::SnapshotResult refused = kv.snapshot("n1");
  EXPECT_TRUE(refused.answered);
  EXPECT_FALSE(refused.ok);
  EXPECT_EQ(refused.snapshot_index, 7u);
  EXPECT_EQ(refused.message, "disk full: data/n1");
  EXPECT_THROW(kv.snapshot("n9"), std::invalid_argument);
}

TEST(KvClient, SnapshotWithoutReplyGivesUpAtTheDeadline) {
  FakeServer n1("n1", nullptr);  // a node that ignores snapshot requests
  client::KvClient kv(make_config({n1.ref()}, 50, 300), std::nullopt, std::nullopt, 7);
  const auto start = Clock::now();
  const client::SnapshotResult r = kv.snapshot("n1");
  const auto elapsed = Clock::now() - start;
  EXPECT_FALSE(r.answered);
  EXPECT_FALSE(r.ok);
  EXPECT_GE(elapsed, 300ms);
  EXPECT_LT(elapsed, 800ms);
  EXPECT_EQ(n1.snapshot_requests(), 1);
}

TEST(KvClient, RejectsUnknownPinnedServer) {
  net::UdpSocket silent(loopback_any_port());
  EXPECT_THROW(client::KvClient(make_config({ref_for("n1", silent)}, 100, 200), "n9"),
               std::invalid_argument);
}

TEST(UdpSocket, ResolveAndReceiveTimeout) {
  config::Address a;
  a.host = "localhost";
  a.port = 7001;
  EXPECT_EQ(net::resolve(a).to_string(), "127.0.0.1:7001");
  a.host = "not-an-ip";
  EXPECT_THROW(net::resolve(a), std::runtime_error);

  net::UdpSocket s(loopback_any_port());
  std::string buffer;
  net::Endpoint from;
  EXPECT_FALSE(s.receive(buffer, from, 0ms));
  net::UdpSocket t(loopback_any_port());
  ASSERT_TRUE(t.send_to(s.local_endpoint(), "ping"));
  ASSERT_TRUE(s.receive(buffer, from, 500ms));
  EXPECT_EQ(buffer, "ping");
  EXPECT_EQ(from, t.local_endpoint());
}

TEST(UdpSocket, SendManyDeliversEveryDatagramWhole) {
  // More than one sendmmsg's worth, and a large datagram before short ones:
  // each arrives whole and at its own length.
  net::UdpSocket s(loopback_any_port());
  net::UdpSocket t(loopback_any_port());
  const std::size_t count = net::UdpSocket::kMaxSendBatch + 6;
  std::vector<std::string> datagrams;
  for (std::size_t i = 0; i < count; ++i) {
    datagrams.push_back(i == 1 ? std::string(60000, 'L') : "d" + std::to_string(i));
  }
  const std::vector<net::Endpoint> to(count, s.local_endpoint());
  ASSERT_TRUE(t.send_many(to.data(), datagrams.data(), count));
  std::string buffer;
  net::Endpoint from;
  for (std::size_t i = 0; i < count; ++i) {
    ASSERT_TRUE(s.receive(buffer, from, 500ms)) << "datagram " << i;
    EXPECT_EQ(buffer, datagrams[i]);
    EXPECT_EQ(from, t.local_endpoint());
  }
  EXPECT_FALSE(s.receive(buffer, from, 0ms));
}

}  // namespace
