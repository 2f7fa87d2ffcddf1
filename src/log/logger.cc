#include "log/logger.h"

#include <sys/time.h>

#include <cstdio>
#include <ctime>

namespace logging {

bool parse_log_level(std::string_view text, LogLevel& level) {
  if (text == "error") level = LogLevel::Error;
  else if (text == "warn") level = LogLevel::Warn;
  else if (text == "info") level = LogLevel::Info;
  else if (text == "debug") level = LogLevel::Debug;
  else return false;
  return true;
}

void Logger::log(LogLevel level, std::string_view text) const {
  if (!enabled(level)) return;
  static constexpr const char* kNames[] = {"ERROR", "WARN ", "INFO ", "DEBUG"};
  timeval tv{};
  gettimeofday(&tv, nullptr);
  tm local{};
  localtime_r(&tv.tv_sec, &local);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%H:%M:%S", &local);
  // One fprintf per line so lines never interleave with other writers.
  std::fprintf(stderr, "%s.%03ld %s %s %.*s\n", stamp, static_cast<long>(tv.tv_usec / 1000),
               kNames[static_cast<int>(level)], name_.c_str(), static_cast<int>(text.size()), text.data());
}

}  // namespace logging
