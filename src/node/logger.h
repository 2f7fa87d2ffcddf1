// Human-readable node log on stderr: one line per event, timestamped, with a
// level. Role and term changes are `info`; every RPC is `debug`.
#pragma once

#include <string>
#include <string_view>

namespace node {

enum class LogLevel { Error = 0, Warn = 1, Info = 2, Debug = 3 };

bool parse_log_level(std::string_view text, LogLevel& level);

class Logger {
 public:
  Logger(std::string node_id, LogLevel level) : node_id_(std::move(node_id)), level_(level) {}
  bool enabled(LogLevel level) const { return level <= level_; }
  void log(LogLevel level, std::string_view text) const;
  void error(std::string_view text) const { log(LogLevel::Error, text); }
  void warn(std::string_view text) const { log(LogLevel::Warn, text); }
  void info(std::string_view text) const { log(LogLevel::Info, text); }
  void debug(std::string_view text) const { log(LogLevel::Debug, text); }

 private:
  std::string node_id_;
  LogLevel level_;
};

}  // namespace node
