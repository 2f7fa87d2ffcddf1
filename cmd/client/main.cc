// `client`: one-shot commands, an interactive prompt and a benchmark, all
// over the client library. Exit codes are part of the interface (scripts
// and the harness branch on them); see kHelp.
#include <editline/readline.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "client/bench.h"
#include "client/kv_client.h"
#include "config/config.h"
#include "output.h"

namespace {

using namespace client_cli;  // exit codes and the printing of answers (output.h)

constexpr const char* kHelp = R"(Usage: client [OPTIONS] COMMAND [ARGS]
       client [OPTIONS]                 (no command: interactive prompt)

Commands:
  get KEY [--local]       print the value, or (nil) when absent; --local reads
                          the contacted node's state (may be stale)
  set KEY VALUE           store VALUE, print OK
  cas KEY EXPECTED VALUE  set KEY to VALUE only if it holds EXPECTED; prints OK,
                          or "(cas failed) current: <value or (nil)>"
  delete KEY              print "(deleted) <old value>", or (nil) when absent
  status                  table of every server: ID ADDRESS STATE ROLE TERM
                          LEADER COMMIT APPLIED LAST_LOG SNAP DROPPED ('-' when
                          unknown; SNAP: latest snapshot's index; DROPPED:
                          refused peer datagrams)
  snapshot --server ID    ask server ID to take a snapshot now; prints
                          "ID: snapshot at index N" (waits up to the deadline)
  bench [--clients N] [--duration S] [--write-ratio F] [--keys N]
        [--value-bytes N] [--seed N]
                          closed-loop load (defaults: 32 clients, 10 s, 0.5,
                          1000 keys, 100-byte values, seed 1)
  help                    this text
  quit, exit              leave the interactive prompt

Options (before or after the command; "--" ends options):
  --config PATH           client config (default configs/client-1.json)
  --server ID             send the first request to server ID (e.g. n2)
  --json                  print one JSON object per command (status: an array)
  --timeout-ms N          per-request timeout (default: from the config)
  --deadline-ms N         overall deadline per command (default: from the config)
  -h, --help              this text

Exit codes:
  0  success (including get of a missing key, delete of a missing key)
  1  cas failed (the key did not hold EXPECTED)
  2  usage error
  3  cluster unavailable: no answer within the deadline (status: no server up;
     bench: no operation succeeded; snapshot: no reply from the server)
  4  request rejected by the cluster (bad_request, too_large; snapshot: the
     server could not take one)
  5  config or setup error (unreadable or invalid config, unresolvable
     address, socket that cannot be bound)
)";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct GlobalOptions {
  std::string config_path = "configs/client-1.json";
  std::optional<std::string> server;
  bool json = false;
  std::optional<int> timeout_ms;
  std::optional<int> deadline_ms;
  bool help = false;
};

template <typename T>
T parse_number(const std::string& flag, const std::string& text) {
  T value{};
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end) {
    throw UsageError(flag + " expects a number, got '" + text + "'");
  }
  return value;
}

int parse_positive_ms(const std::string& flag, const std::string& text) {
  const int value = parse_number<int>(flag, text);
  if (value <= 0) throw UsageError(flag + " must be positive");
  return value;
}

// Splits "--flag=value" or takes the value from the next argument.
// `i` points at the flag and is advanced past what was consumed.
std::string flag_value(const std::vector<std::string>& args, std::size_t& i, const std::string& flag) {
  const std::string& arg = args[i];
  if (arg.size() > flag.size() && arg[flag.size()] == '=') return arg.substr(flag.size() + 1);
  if (i + 1 >= args.size()) throw UsageError(flag + " needs a value");
  return args[++i];
}

bool is_flag(const std::string& arg, const std::string& flag) {
  return arg == flag || (arg.size() > flag.size() && arg.compare(0, flag.size(), flag) == 0 &&
                         arg[flag.size()] == '=');
}

// Takes the global options out of `args` wherever they are, leaving the
// command and its own arguments (including its flags, e.g. --local) in order.
std::vector<std::string> extract_global_options(const std::vector<std::string>& args,
                                                GlobalOptions& options) {
  std::vector<std::string> rest;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      // Everything after is literal, so values like "--json" can be stored.
      rest.push_back(arg);
      rest.insert(rest.end(), args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      break;
    }
    if (is_flag(arg, "--config")) {
      options.config_path = flag_value(args, i, "--config");
    } else if (is_flag(arg, "--server")) {
      options.server = flag_value(args, i, "--server");
    } else if (arg == "--json") {
      options.json = true;
    } else if (is_flag(arg, "--timeout-ms")) {
      options.timeout_ms = parse_positive_ms("--timeout-ms", flag_value(args, i, "--timeout-ms"));
    } else if (is_flag(arg, "--deadline-ms")) {
      options.deadline_ms = parse_positive_ms("--deadline-ms", flag_value(args, i, "--deadline-ms"));
    } else if (arg == "--help" || arg == "-h") {
      options.help = true;
    } else {
      rest.push_back(arg);
    }
  }
  return rest;
}

// A command's arguments split into positionals and its own flags.
struct CommandArgs {
  std::vector<std::string> positional;
  std::vector<std::pair<std::string, std::string>> flags;  // (name, value or "")
};

// `valued` lists the flags that take a value; `plain` those that do not.
CommandArgs split_command_args(const std::vector<std::string>& args, std::size_t from,
                               const std::vector<std::string>& valued,
                               const std::vector<std::string>& plain) {
  CommandArgs out;
  bool literal = false;
  for (std::size_t i = from; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (!literal && arg == "--") {
      literal = true;
      continue;
    }
    if (literal || arg.size() < 3 || arg.compare(0, 2, "--") != 0) {
      out.positional.push_back(arg);
      continue;
    }
    bool matched = false;
    for (const auto& flag : valued) {
      if (is_flag(arg, flag)) {
        out.flags.emplace_back(flag, flag_value(args, i, flag));
        matched = true;
        break;
      }
    }
    for (const auto& flag : plain) {
      if (!matched && arg == flag) {
        out.flags.emplace_back(flag, "");
        matched = true;
      }
    }
    if (!matched) throw UsageError("unknown option '" + arg + "' for " + args[0]);
  }
  return out;
}

void expect_args(const std::string& command, const CommandArgs& args, std::size_t n,
                 const char* shape) {
  if (args.positional.size() != n) {
    throw UsageError("'" + command + "' expects " + shape + " (see 'client help')");
  }
}

// Everything a command needs; the KvClient lives as long as the session so
// the interactive prompt keeps its leader guess and seq between commands.
struct Session {
  GlobalOptions options;
  config::ClientConfig config;
  std::unique_ptr<client::KvClient> kv;
};

// A command checked for usage errors, before any config is read: a typo
// must say "usage" (exit 2), not blame a missing config.
struct Command {
  std::string name;  // get, set, cas, delete, status, snapshot, bench, help
  std::vector<std::string> args;
  bool local = false;
  // snapshot: the server, when given after the command at the prompt (on
  // the command line --server is a global option and lands in GlobalOptions).
  std::optional<std::string> server;
  client::BenchOptions bench;
};

// Parses args[0] and its arguments. Throws UsageError.
Command parse_command(const std::vector<std::string>& args) {
  Command c;
  c.name = args.at(0);
  if (c.name == "del") c.name = "delete";
  CommandArgs parsed;
  if (c.name == "help") {
    parsed = split_command_args(args, 1, {}, {});
  } else if (c.name == "get") {
    parsed = split_command_args(args, 1, {}, {"--local"});
    expect_args(c.name, parsed, 1, "KEY [--local]");
    c.local = !parsed.flags.empty();
  } else if (c.name == "set") {
    parsed = split_command_args(args, 1, {}, {});
    expect_args(c.name, parsed, 2, "KEY VALUE");
  } else if (c.name == "cas") {
    parsed = split_command_args(args, 1, {}, {});
    expect_args(c.name, parsed, 3, "KEY EXPECTED VALUE");
  } else if (c.name == "delete") {
    parsed = split_command_args(args, 1, {}, {});
    expect_args(c.name, parsed, 1, "KEY");
  } else if (c.name == "status") {
    parsed = split_command_args(args, 1, {}, {});
    expect_args(c.name, parsed, 0, "no arguments");
  } else if (c.name == "snapshot") {
    parsed = split_command_args(args, 1, {"--server"}, {});
    expect_args(c.name, parsed, 0, "--server ID");
    for (const auto& [flag, value] : parsed.flags) c.server = value;
  } else if (c.name == "bench") {
    parsed = split_command_args(
        args, 1, {"--clients", "--duration", "--write-ratio", "--keys", "--value-bytes", "--seed"},
        {});
    expect_args(c.name, parsed, 0, "only options");
    for (const auto& [flag, value] : parsed.flags) {
      if (flag == "--clients") c.bench.clients = parse_number<int>(flag, value);
      if (flag == "--duration") c.bench.duration_s = parse_number<double>(flag, value);
      if (flag == "--write-ratio") c.bench.write_ratio = parse_number<double>(flag, value);
      if (flag == "--keys") c.bench.keys = parse_number<int>(flag, value);
      if (flag == "--value-bytes") c.bench.value_bytes = parse_number<int>(flag, value);
      if (flag == "--seed") c.bench.seed = parse_number<std::uint64_t>(flag, value);
    }
  } else if (c.name.size() > 1 && c.name[0] == '-') {
    throw UsageError("unknown option '" + args[0] + "' (see 'client help')");
  } else {
    throw UsageError("unknown command '" + args[0] + "' (see 'client help')");
  }
  c.args = std::move(parsed.positional);
  return c;
}

int run_bench_command(Session& s, const client::BenchOptions& options) {
  client::BenchReport report;
  try {
    report = client::run_bench(s.config, options);
  } catch (const std::invalid_argument& e) {  // out-of-range option values
    throw UsageError(e.what());
  }
  if (s.options.json) {
    std::cout << client::report_json(report) << std::endl;
  } else {
    std::cout << client::format_report(report) << std::flush;
  }
  return report.ok_ops == 0 && report.unavailable > 0 ? kExitUnavailable : kExitOk;
}

// The one node a snapshot command is for; a snapshot of "any node" would
// leave the operator guessing which one took it.
std::optional<std::string> snapshot_target(const GlobalOptions& options, const Command& c) {
  return c.server ? c.server : options.server;
}

constexpr const char* kSnapshotNeedsServer = "'snapshot' needs --server ID: the node to take the snapshot";

int run_snapshot_command(Session& s, const Command& c) {
  const std::optional<std::string> server = snapshot_target(s.options, c);
  if (!server) throw UsageError(kSnapshotNeedsServer);
  try {
    return print_snapshot(s.options.json, s.config.params.deadline_ms, s.kv->snapshot(*server));
  } catch (const std::invalid_argument& e) {  // a server the config does not list
    throw UsageError(e.what());
  }
}

// Runs a parsed command and returns its exit code.
int run_command(Session& s, const Command& c) {
  if (c.name == "help") {
    std::cout << kHelp;
    return kExitOk;
  }
  if (c.name == "get") return report(s.options.json, s.config.params.deadline_ms, c.name, s.kv->get(c.args[0], c.local));
  if (c.name == "set") return report(s.options.json, s.config.params.deadline_ms, c.name, s.kv->set(c.args[0], c.args[1]));
  if (c.name == "cas") return report(s.options.json, s.config.params.deadline_ms, c.name, s.kv->cas(c.args[0], c.args[1], c.args[2]));
  if (c.name == "delete") return report(s.options.json, s.config.params.deadline_ms, c.name, s.kv->del(c.args[0]));
  if (c.name == "status") return print_status(s.options.json, s.kv->status_all());
  if (c.name == "snapshot") return run_snapshot_command(s, c);
  if (c.name == "bench") return run_bench_command(s, c.bench);
  throw UsageError("unknown command '" + c.name + "'");
}

// Splits a prompt line like a shell: whitespace separates, "..." (with backslash
// escapes) and '...' quote, so values may contain spaces.
std::vector<std::string> tokenize(const std::string& line) {
  std::vector<std::string> tokens;
  std::string current;
  bool in_token = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (in_token) tokens.push_back(std::move(current));
      current.clear();
      in_token = false;
    } else if (c == '"' || c == '\'') {
      in_token = true;
      std::size_t j = i + 1;
      for (; j < line.size() && line[j] != c; ++j) {
        if (c == '"' && line[j] == '\\' && j + 1 < line.size()) {
          const char e = line[++j];
          current += e == 'n' ? '\n' : e == 't' ? '\t' : e;
        } else {
          current += line[j];
        }
      }
      if (j >= line.size()) throw UsageError("unterminated quote");
      i = j;
    } else {
      in_token = true;
      current += c;
    }
  }
  if (in_token) tokens.push_back(std::move(current));
  return tokens;
}

std::string history_path() {
  const char* home = std::getenv("HOME");
  return home != nullptr && *home != '\0' ? std::string(home) + "/.raftkv_history" : std::string();
}

int interactive(Session& s) {
  const std::string history = history_path();
  if (!history.empty()) read_history(history.c_str());
  for (;;) {
    // The prompt names the server we would talk to first, like redis-cli's host:port.
    std::string where = s.kv->known_leader();
    if (where.empty() && s.options.server) where = *s.options.server;
    const std::string prompt = (where.empty() ? std::string("raft") : where) + "> ";

    std::unique_ptr<char, decltype(&std::free)> raw(readline(prompt.c_str()), &std::free);
    if (!raw) {  // EOF (Ctrl-D)
      std::cout << std::endl;
      break;
    }
    const std::string line(raw.get());
    try {
      const auto args = tokenize(line);
      if (args.empty()) continue;  // blank lines are not commands nor history
      add_history(line.c_str());
      if (!history.empty()) write_history(history.c_str());  // survive a kill
      if (args[0] == "quit" || args[0] == "exit") break;
      run_command(s, parse_command(args));
    } catch (const UsageError& e) {
      std::cerr << "error: " << e.what() << std::endl;
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << std::endl;
    }
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  Session s;
  std::optional<Command> command;  // none: interactive prompt
  try {
    auto args = extract_global_options(std::vector<std::string>(argv + 1, argv + argc), s.options);
    if (!args.empty() && args[0] == "--") args.erase(args.begin());
    if (s.options.help) {
      std::cout << kHelp;
      return kExitOk;
    }
    if (!args.empty()) command = parse_command(args);
    if (command && command->name == "snapshot" && !snapshot_target(s.options, *command)) {
      throw UsageError(kSnapshotNeedsServer);
    }
  } catch (const UsageError& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return kExitUsage;
  }
  if (command && command->name == "help") {  // needs no config
    std::cout << kHelp;
    return kExitOk;
  }

  try {
    s.config = config::load_client_config(s.options.config_path);
  } catch (const config::ConfigError& e) {
    std::cerr << e.what() << std::endl;
    return kExitConfig;
  } catch (const std::exception& e) {
    std::cerr << s.options.config_path << ": " << e.what() << std::endl;
    return kExitConfig;
  }
  if (s.options.timeout_ms) s.config.params.request_timeout_ms = *s.options.timeout_ms;
  if (s.options.deadline_ms) s.config.params.deadline_ms = *s.options.deadline_ms;

  try {
    s.kv = std::make_unique<client::KvClient>(s.config, s.options.server);
  } catch (const std::invalid_argument& e) {  // e.g. --server names no server
    std::cerr << "error: " << e.what() << std::endl;
    return kExitUsage;
  } catch (const std::exception& e) {  // an address that does not resolve
    std::cerr << s.options.config_path << ": " << e.what() << std::endl;
    return kExitConfig;
  }

  if (!command) return interactive(s);
  try {
    return run_command(s, *command);
  } catch (const UsageError& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return kExitUsage;
  } catch (const std::exception& e) {  // e.g. a bench client's socket cannot be bound
    std::cerr << "error: " << e.what() << std::endl;
    return kExitConfig;
  }
}
