// Human-readable log on stderr, shared by node and proxy: one line per
// event, timestamped, with a level and the name of the process it is from.
#pragma once

#include <string>
#include <string_view>

namespace logging {

enum class LogLevel { Error = 0, Warn = 1, Info = 2, Debug = 3 };

bool parse_log_level(std::string_view text, LogLevel& level);

class Logger {
 public:
  Logger(std::string name, LogLevel level) : name_(std::move(name)), level_(level) {}
  bool enabled(LogLevel level) const { return level <= level_; }
  bool debug_enabled() const { return enabled(LogLevel::Debug); }
  void log(LogLevel level, std::string_view text) const;
  void error(std::string_view text) const { log(LogLevel::Error, text); }
  void warn(std::string_view text) const { log(LogLevel::Warn, text); }
  void info(std::string_view text) const { log(LogLevel::Info, text); }
  void debug(std::string_view text) const { log(LogLevel::Debug, text); }

 private:
  std::string name_;
  LogLevel level_;
};

}  // namespace logging
