// Thin, non-throwing wrappers over non-blocking IPv4 UDP sockets.
#pragma once

#include <cstddef>
#include <string>

#include "endpoint.h"

namespace proxy {

// Opens a non-blocking, close-on-exec UDP socket bound to `local` (port 0:
// any). Returns the fd, or -1 with `error` set ("bind 127.0.0.1:7001: ...").
int open_udp_socket(const Endpoint& local, std::string& error);

// Asks for bigger kernel buffers (best effort; the kernel may cap them).
void enlarge_buffers(int fd, int bytes);

// The port the kernel gave a socket bound to port 0.
Endpoint local_endpoint(int fd);

enum class RecvResult { kDatagram, kEmpty, kRetry };

// One datagram into buffer[0..capacity). kEmpty: nothing more to read now;
// kRetry: a transient error or an oversized datagram was discarded, try again.
RecvResult receive_from(int fd, char* buffer, std::size_t capacity, std::size_t& size, Endpoint& from);

// Hands one datagram to the kernel. False if it refused (e.g. buffer full).
bool send_to(int fd, const Endpoint& to, const char* data, std::size_t size);

void close_socket(int fd);

}  // namespace proxy
