// launcher: runs one `node` process per configs/server-N.json and multiplexes
// their output onto our stdout, one line at a time, prefixed with the node id:
//
//   [n1]  became leader for term 3
//   [n10] granted vote to n1 for term 3
//   [launcher] n3 exited with status 1
//
// Usage: launcher [--node-bin PATH] [--config-dir DIR] [--grace SECONDS]
//
// Lifecycle:
//   * SIGINT / SIGTERM / SIGHUP (received by a dedicated sigwait thread):
//     SIGTERM every child that is still running (by PID, never by group),
//     wait up to the grace period (3 s), SIGKILL the rest, reap them all,
//     exit 0. A second signal during the grace period skips to SIGKILL.
//   * A node that exits on its own is reported and the others keep running
//     (the cluster tolerates failures). When every node has exited: exit 1.
//   * No server config, or no node binary: error on stderr, exit 2.
//
// Threads: one reader per child (blocking getline on its merged
// stdout+stderr pipe), one reaper (waitid on any child), one signal waiter;
// the main thread supervises. A single mutex guards all shared state and all
// printing, so lines never interleave. A child is reaped only by the reaper,
// under that mutex, so a kill() issued under the mutex can never hit a
// recycled PID (an exited but unreaped child is a zombie that keeps its PID).
//
// Children get stdin from /dev/null, an empty signal mask, default signal
// dispositions, no inherited descriptors beyond 0-2, and
// PR_SET_PDEATHSIG(SIGKILL), so even a SIGKILLed launcher leaves no node
// behind.

#include <boost/process.hpp>
#include <boost/process/extend.hpp>

#if __has_include(<nlohmann/json.hpp>)
#include <nlohmann/json.hpp>
#define LAUNCHER_HAVE_JSON 1
#endif

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace bp = boost::process;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr int kExitAllDied = 1;
constexpr int kExitUsage = 2;

struct Options {
  std::string node_bin = "./node";
  std::string config_dir = "configs";
  double grace_seconds = 3.0;
};

struct ServerEntry {
  long number = 0;
  fs::path config;
  std::string id;
};

struct Child {
  std::string id;
  std::string prefix;  // "[n1] " padded, possibly coloured
  fs::path config;
  pid_t pid = -1;
  std::unique_ptr<bp::ipstream> out;

  bool eof = false;       // reader saw end of the pipe
  bool exited = false;    // reaped by the reaper thread
  bool reported = false;  // "[launcher] ... exited" printed
  int status = 0;         // raw waitpid status
  Clock::time_point exit_time{};
};

// ---- shared state (all guarded by g_mu) ------------------------------------
std::mutex g_mu;
std::condition_variable g_cv;
std::vector<std::unique_ptr<Child>> g_children;
int g_shutdown_signals = 0;
int g_last_signal = 0;
bool g_color = false;

[[noreturn]] void usage(int code) {
  std::FILE* f = code == 0 ? stdout : stderr;
  std::fprintf(f,
               "usage: launcher [--node-bin PATH] [--config-dir DIR] [--grace SECONDS]\n"
               "  Starts NODE_BIN CONFIG for every DIR/server-N.json (default: ./node, configs)\n"
               "  and prints their output prefixed with the node id. Ctrl-C stops them all.\n");
  std::exit(code);
}

Options parse_args(int argc, char** argv) {
  Options o;
  auto value = [&](int& i, const std::string& arg, const std::string& name) -> std::string {
    if (arg.size() > name.size() && arg.compare(0, name.size() + 1, name + "=") == 0)
      return arg.substr(name.size() + 1);
    if (i + 1 >= argc) {
      std::fprintf(stderr, "launcher: %s needs a value\n", name.c_str());
      usage(kExitUsage);
    }
    return argv[++i];
  };
  auto is = [](const std::string& arg, const std::string& name) {
    return arg == name || arg.rfind(name + "=", 0) == 0;
  };
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      usage(0);
    } else if (is(arg, "--node-bin")) {
      o.node_bin = value(i, arg, "--node-bin");
    } else if (is(arg, "--config-dir")) {
      o.config_dir = value(i, arg, "--config-dir");
    } else if (is(arg, "--grace")) {
      std::string v = value(i, arg, "--grace");
      char* end = nullptr;
      o.grace_seconds = std::strtod(v.c_str(), &end);
      if (end == v.c_str() || *end != '\0' || o.grace_seconds < 0) {
        std::fprintf(stderr, "launcher: bad --grace value '%s'\n", v.c_str());
        usage(kExitUsage);
      }
    } else {
      std::fprintf(stderr, "launcher: unknown argument '%s'\n", arg.c_str());
      usage(kExitUsage);
    }
  }
  return o;
}

// The node id: the config's top-level "id" when readable, else "n<N>".
std::string read_id(const fs::path& config, long number) {
  std::string fallback = "n" + std::to_string(number);
#ifdef LAUNCHER_HAVE_JSON
  try {
    std::ifstream in(config);
    auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("id")) {
      const auto& id = j["id"];
      if (id.is_string() && !id.get<std::string>().empty()) return id.get<std::string>();
      if (id.is_number_integer()) return "n" + std::to_string(id.get<long long>());
    }
  } catch (const std::exception&) {
    // Unreadable config: the node itself will report it; keep the file-name id.
  }
#else
  (void)config;
#endif
  return fallback;
}

std::vector<ServerEntry> find_configs(const std::string& dir) {
  std::vector<ServerEntry> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  static const std::regex pattern(R"(server-([0-9]+)\.json)");
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    std::smatch m;
    if (!std::regex_match(name, m, pattern)) continue;
    std::error_code ec2;
    if (!fs::is_regular_file(it->path(), ec2)) continue;
    ServerEntry e;
    e.number = std::strtol(m[1].str().c_str(), nullptr, 10);
    e.config = fs::path(dir) / name;
    out.push_back(std::move(e));
  }
  std::sort(out.begin(), out.end(), [](const ServerEntry& a, const ServerEntry& b) {
    return a.number < b.number;
  });
  for (auto& e : out) e.id = read_id(e.config, e.number);
  return out;
}

const char* signal_name(int sig) {
  switch (sig) {
    case SIGHUP: return "SIGHUP";
    case SIGINT: return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGILL: return "SIGILL";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGKILL: return "SIGKILL";
    case SIGSEGV: return "SIGSEGV";
    case SIGPIPE: return "SIGPIPE";
    case SIGALRM: return "SIGALRM";
    case SIGTERM: return "SIGTERM";
    default: return "signal";
  }
}

// ---- output (caller holds g_mu) ---------------------------------------------
void emit_locked(const std::string& text) {
  // One write per line: a partial write is retried, errors (EPIPE) dropped.
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(STDOUT_FILENO, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

void say_locked(const std::string& msg) {
  if (g_color)
    emit_locked("\033[1m[launcher]\033[0m " + msg + "\n");
  else
    emit_locked("[launcher] " + msg + "\n");
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    std::string s = "killed by signal " + std::to_string(sig) + " (" + signal_name(sig) + ")";
    if (WCOREDUMP(status)) s += ", core dumped";
    return s;
  }
  return "ended with raw status " + std::to_string(status);
}

// Prints exit reports once a child's output is drained (or after a short
// wait for it, in case a grandchild keeps the pipe open). `force` skips the wait.
void report_exits_locked(bool force) {
  auto now = Clock::now();
  for (auto& c : g_children) {
    if (!c->exited || c->reported) continue;
    if (!force && !c->eof && now - c->exit_time < 500ms) continue;
    c->reported = true;
    say_locked(c->id + " " + describe_status(c->status));
  }
}

bool all_exited_locked() {
  return std::all_of(g_children.begin(), g_children.end(),
                     [](const auto& c) { return c->exited; });
}
bool all_reported_locked() {
  return std::all_of(g_children.begin(), g_children.end(),
                     [](const auto& c) { return c->reported; });
}
bool all_eof_locked() {
  return std::all_of(g_children.begin(), g_children.end(),
                     [](const auto& c) { return c->eof; });
}

// Sends `sig` to every child not yet reaped; returns how many were signalled.
int signal_alive_locked(int sig) {
  int n = 0;
  for (auto& c : g_children) {
    if (c->exited || c->pid <= 0) continue;
    if (::kill(c->pid, sig) == 0) ++n;
  }
  return n;
}

// ---- threads ----------------------------------------------------------------
void reader_thread(Child* c) {
  std::string line;
  while (std::getline(*c->out, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::lock_guard lk(g_mu);
    emit_locked(c->prefix + line + "\n");
  }
  std::lock_guard lk(g_mu);
  c->eof = true;
  g_cv.notify_all();
}

void reaper_thread() {
  for (;;) {
    siginfo_t info{};
    // WNOWAIT: learn which child ended without reaping it yet, so its PID
    // stays reserved until we hold the mutex.
    if (::waitid(P_ALL, 0, &info, WEXITED | WNOWAIT) == -1) {
      if (errno == EINTR) continue;
      return;  // ECHILD: nothing left to wait for
    }
    pid_t pid = info.si_pid;
    std::lock_guard lk(g_mu);
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(pid, &status, 0);
    } while (r == -1 && errno == EINTR);
    for (auto& c : g_children) {
      if (c->pid == pid && !c->exited) {
        c->exited = true;
        c->status = status;
        c->exit_time = Clock::now();
      }
    }
    g_cv.notify_all();
  }
}

void signal_thread(sigset_t set) {
  for (;;) {
    int sig = 0;
    if (::sigwait(&set, &sig) != 0) continue;
    std::lock_guard lk(g_mu);
    ++g_shutdown_signals;
    g_last_signal = sig;
    g_cv.notify_all();
  }
}

[[noreturn]] void finish(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
  // Helper threads may still be blocked (sigwait, a pipe held by a
  // grandchild): leave without running static destructors under them.
  ::_exit(code);
}

std::string pad_right(const std::string& s, size_t width) {
  return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}

}  // namespace

int main(int argc, char** argv) {
  Options opt = parse_args(argc, argv);

  // --- preflight --------------------------------------------------------------
  std::vector<ServerEntry> servers = find_configs(opt.config_dir);
  if (servers.empty()) {
    std::fprintf(stderr,
                 "launcher: no server configs (server-N.json) found in '%s'; "
                 "create them first, e.g. `./setup 5 3`\n",
                 opt.config_dir.c_str());
    return kExitUsage;
  }
  std::error_code ec;
  fs::path node_bin = opt.node_bin;
  if (!fs::exists(node_bin, ec)) {
    std::fprintf(stderr, "launcher: node binary '%s' not found (build it with `make`)\n",
                 opt.node_bin.c_str());
    return kExitUsage;
  }
  if (!fs::is_regular_file(node_bin, ec) || ::access(node_bin.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "launcher: node binary '%s' is not an executable file\n",
                 opt.node_bin.c_str());
    return kExitUsage;
  }
  // Absolute, so execve never falls back to a PATH search for a bare name.
  node_bin = fs::absolute(node_bin, ec).lexically_normal();

  g_color = ::isatty(STDOUT_FILENO) && std::getenv("NO_COLOR") == nullptr;

  // --- signals: block in every thread (children undo it before exec) ---------
  sigset_t stop_set;
  sigemptyset(&stop_set);
  sigaddset(&stop_set, SIGINT);
  sigaddset(&stop_set, SIGTERM);
  struct sigaction hup {};
  if (::sigaction(SIGHUP, nullptr, &hup) == 0 && hup.sa_handler != SIG_IGN)
    sigaddset(&stop_set, SIGHUP);  // but stay put under nohup
  pthread_sigmask(SIG_BLOCK, &stop_set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);  // a closed stdout must not kill us mid-shutdown

  // --- prefixes -----------------------------------------------------------------
  size_t width = 0;
  for (const auto& s : servers) width = std::max(width, s.id.size() + 2);
  static const char* kColors[] = {"36", "32", "35", "34", "33", "31",
                                  "96", "92", "95", "94", "93", "91"};

  // --- launch (before any other thread exists: fork from a single thread) ----
  const pid_t self = ::getpid();
  auto child_setup = [self](auto&) {
    // Runs in the child between fork and exec: async-signal-safe calls only.
    // Undo what the launcher (or a non-interactive parent shell, which
    // ignores SIGINT/SIGQUIT in background jobs) did to signal handling.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGINT, SIGQUIT, SIGTERM, SIGPIPE}) ::signal(sig, SIG_DFL);
    // Descriptors the launcher inherited must not leak into the node; 0-2 are
    // the pipe and /dev/null. CLOEXEC rather than close: Boost's exec-error
    // pipe (already CLOEXEC) must survive until execve.
    if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
      long max_fd = std::min(::sysconf(_SC_OPEN_MAX), 65536L);
      for (int fd = 3; fd < max_fd; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != self) ::_exit(127);  // launcher already gone
  };

  for (size_t i = 0; i < servers.size(); ++i) {
    const auto& s = servers[i];
    auto c = std::make_unique<Child>();
    c->id = s.id;
    c->config = s.config;
    std::string tag = pad_right("[" + s.id + "]", width);
    c->prefix = g_color ? std::string("\033[") + kColors[i % std::size(kColors)] + "m" + tag +
                              "\033[0m "
                        : tag + " ";
    c->out = std::make_unique<bp::ipstream>();
    // Our read end must not leak into later children (or this one).
    ::fcntl(c->out->pipe().native_source(), F_SETFD, FD_CLOEXEC);
    try {
      bp::child proc(bp::exe = node_bin.string(), bp::args = {s.config.string()},
                     (bp::std_out & bp::std_err) > *c->out, bp::std_in < bp::null,
                     bp::extend::on_exec_setup = child_setup);
      c->pid = proc.id();
      proc.detach();  // we reap by PID ourselves
    } catch (const std::exception& e) {
      std::fprintf(stderr, "launcher: cannot start %s %s: %s\n", node_bin.c_str(),
                   s.config.c_str(), e.what());
      for (auto& started : g_children) ::kill(started->pid, SIGKILL);
      for (auto& started : g_children) ::waitpid(started->pid, nullptr, 0);
      return kExitUsage;
    }
    g_children.push_back(std::move(c));
  }

  {
    std::lock_guard lk(g_mu);
    std::string ids;
    for (auto& c : g_children) ids += (ids.empty() ? "" : " ") + c->id;
    say_locked("started " + std::to_string(g_children.size()) + " node(s) (" + ids + ") using " +
               node_bin.string());
  }

  for (auto& c : g_children) std::thread(reader_thread, c.get()).detach();
  std::thread(reaper_thread).detach();
  std::thread(signal_thread, stop_set).detach();

  // --- supervise ------------------------------------------------------------------
  enum class Phase { kRunning, kTerminating, kKilling } phase = Phase::kRunning;
  const auto grace = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(opt.grace_seconds));
  Clock::time_point deadline{};
  int exit_code = 0;

  std::unique_lock lk(g_mu);
  for (;;) {
    g_cv.wait_for(lk, 100ms);
    report_exits_locked(/*force=*/false);
    auto now = Clock::now();

    if (phase == Phase::kRunning) {
      if (g_shutdown_signals > 0) {
        int n = signal_alive_locked(SIGTERM);
        say_locked(std::string("received ") + signal_name(g_last_signal) + ", sent SIGTERM to " +
                   std::to_string(n) + " node(s)");
        phase = Phase::kTerminating;
        deadline = now + grace;
      } else if (all_exited_locked() && all_reported_locked()) {
        // A terminal Ctrl-C also reaches the nodes directly; give our own
        // SIGINT a moment to arrive before calling this a failure.
        g_cv.wait_for(lk, 300ms, [] { return g_shutdown_signals > 0; });
        if (g_shutdown_signals > 0) break;
        say_locked("all nodes have exited");
        exit_code = kExitAllDied;
        break;
      }
    }
    if (phase == Phase::kTerminating) {
      if (all_exited_locked()) break;
      if (now >= deadline || g_shutdown_signals >= 2) {
        int n = signal_alive_locked(SIGKILL);
        say_locked("sent SIGKILL to " + std::to_string(n) + " node(s) still running");
        phase = Phase::kKilling;
        deadline = now + 5s;
      }
    } else if (phase == Phase::kKilling) {
      if (all_exited_locked()) break;
      if (now >= deadline) {
        say_locked("warning: some nodes did not die after SIGKILL");
        break;
      }
    }
  }

  // Drain what the nodes printed last, then report anything left.
  g_cv.wait_for(lk, 1s, [] { return all_eof_locked(); });
  report_exits_locked(/*force=*/true);
  lk.unlock();
  finish(exit_code);
}
