// Whether the client of a request is still there, for a handler that writes nothing until its reply is whole.
// cpp-httplib 0.11 (Debian bookworm's) does not tell a handler when its connection closes (later versions
// have Request::is_connection_closed); a streamed reply learns it from its DataSink, but a non-streamed one
// writes only at the end. So the handler finds its connection's socket by the addresses httplib does report
// -- the peer's address and port, and our local port: one TCP connection -- and peeks at it while it waits.
// The socket stays open while the handler runs (httplib closes it after the response), so the descriptor
// cannot be reused under it.
#pragma once
#include <string>

namespace strata::server {

class ClientWatch {
  public:
    ClientWatch(const std::string& remote_addr, int remote_port, int local_port);
    // The peer closed or reset the connection. False when the socket was not found (nothing is known then).
    bool gone() const;
    bool found() const { return fd_ >= 0; }

  private:
    int fd_ = -1;
};

}  // namespace strata::server
