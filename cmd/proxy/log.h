// The proxy's log on stderr: one timestamped line per event. `info` logs
// startup and every control command; `debug` also every datagram decision.
#pragma once

#include <string_view>

namespace proxy {

enum class LogLevel { Error = 0, Warn = 1, Info = 2, Debug = 3 };

bool parse_log_level(std::string_view text, LogLevel& level);

class Logger {
 public:
  explicit Logger(LogLevel level) : level_(level) {}
  bool enabled(LogLevel level) const { return level <= level_; }
  bool debug_enabled() const { return enabled(LogLevel::Debug); }
  void log(LogLevel level, std::string_view text) const;
  void error(std::string_view text) const { log(LogLevel::Error, text); }
  void warn(std::string_view text) const { log(LogLevel::Warn, text); }
  void info(std::string_view text) const { log(LogLevel::Info, text); }
  void debug(std::string_view text) const { log(LogLevel::Debug, text); }

 private:
  LogLevel level_;
};

}  // namespace proxy
