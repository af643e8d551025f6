#include "server/client_watch.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>

namespace strata::server {

namespace {

// The address and port of a socket address, as httplib prints them (inet_ntop).
bool address_of(const sockaddr_storage& a, std::string& ip, int& port) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (a.ss_family == AF_INET) {
        const auto& in = reinterpret_cast<const sockaddr_in&>(a);
        inet_ntop(AF_INET, &in.sin_addr, buf, sizeof buf);
        port = ntohs(in.sin_port);
    } else if (a.ss_family == AF_INET6) {
        const auto& in6 = reinterpret_cast<const sockaddr_in6&>(a);
        inet_ntop(AF_INET6, &in6.sin6_addr, buf, sizeof buf);
        port = ntohs(in6.sin6_port);
    } else {
        return false;
    }
    ip = buf;
    return true;
}

}  // namespace

ClientWatch::ClientWatch(const std::string& remote_addr, int remote_port, int local_port) {
    DIR* dir = opendir("/proc/self/fd");
    if (!dir) return;
    while (const dirent* e = readdir(dir)) {
        char* end = nullptr;
        const long fd = std::strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end != '\0') continue;
        struct stat st {};
        if (fstat(static_cast<int>(fd), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
        sockaddr_storage peer{}, local{};
        socklen_t n = sizeof peer, m = sizeof local;
        if (getpeername(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&peer), &n) != 0) continue;
        if (getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&local), &m) != 0) continue;
        std::string ip, local_ip;
        int port = 0, lport = 0;
        if (!address_of(peer, ip, port) || !address_of(local, local_ip, lport)) continue;
        if (ip == remote_addr && port == remote_port && lport == local_port) {
            fd_ = static_cast<int>(fd);
            break;
        }
    }
    closedir(dir);
}

bool ClientWatch::gone() const {
    if (fd_ < 0) return false;
    char byte;
    const ssize_t n = recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) return false;  // more data (a pipelined request): still there
    if (n == 0) return true;  // orderly close
    return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;  // reset, or worse
}

}  // namespace strata::server
