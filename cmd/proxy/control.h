// The control socket: reads command datagrams, executes them (commands.h),
// answers each to its source address, and logs one info line per command.
#pragma once

#include <string>
#include <vector>

#include "commands.h"
#include "endpoint.h"
#include "link_table.h"
#include "log/logger.h"

namespace proxy {

class ControlSocket {
 public:
  explicit ControlSocket(const logging::Logger& log) : log_(log), buffer_(65536) {}
  ~ControlSocket();
  ControlSocket(const ControlSocket&) = delete;
  ControlSocket& operator=(const ControlSocket&) = delete;

  // Binds the control address. Throws std::runtime_error when it cannot.
  void open(const Endpoint& address);
  int fd() const { return fd_; }

  // Answers every command waiting on the socket (at most a bounded batch).
  void serve(LinkTable& table, const ProxyStatus& status);

 private:
  const logging::Logger& log_;
  int fd_ = -1;
  std::vector<char> buffer_;
};

}  // namespace proxy
