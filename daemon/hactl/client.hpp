// hactl's client side of a control socket (duetd's, or a replica engine's): JSON lines of
// proto/control.hpp over a Unix stream socket.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>

#include "proto/control.hpp"

namespace duet::hactl {

using Json = nlohmann::json;

// Exit codes: 0 ok, 1 the daemon answered with an error, 2 usage, 3 the daemon is not running
// (LSB's "program is not running"), 4 protocol error.
enum Exit { kOk = 0, kFailed = 1, kUsageError = 2, kNotRunning = 3, kProtocol = 4 };

class Client {
public:
    // `what` names the daemon in messages: "duetd", "the replica engine of r0".
    explicit Client(std::string path, std::string what = "duetd") : path_(std::move(path)), what_(std::move(what)) {}
    ~Client() {
        if (fd_ >= 0) ::close(fd_);
    }

    int connect() {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        if (path_.size() >= sizeof addr.sun_path) {
            std::cerr << "hactl: socket path too long: " << path_ << "\n";
            return kUsageError;
        }
        std::memcpy(addr.sun_path, path_.c_str(), path_.size());
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            int e = errno;
            std::cerr << "hactl: cannot connect to " << what_ << " at " << path_ << ": " << std::strerror(e);
            if (e == ENOENT || e == ECONNREFUSED) std::cerr << " (is " << what_ << " running?)";
            if (e == EACCES) std::cerr << " (hactl needs root or the haclient group)";
            std::cerr << "\n";
            return e == EACCES ? kFailed : kNotRunning;
        }
        return kOk;
    }

    int fd() const { return fd_; }
    // For several streams at once (poll on fd()): one read into the buffer (false at end of
    // stream), then the complete lines it holds.
    bool read_some() {
        char buf[65536];
        ssize_t n;
        do n = ::read(fd_, buf, sizeof buf);
        while (n < 0 && errno == EINTR);
        if (n <= 0 || split_.overflow()) return false;
        split_.append(std::string_view(buf, static_cast<size_t>(n)));
        return !split_.overflow();
    }
    std::optional<std::string> buffered_line() { return split_.next(); }

    bool send(const proto::control::Request& r) {
        std::string line = proto::control::encode(r);
        size_t off = 0;
        while (off < line.size()) {
            ssize_t n = ::write(fd_, line.data() + off, line.size() - off);
            if (n < 0) {
                if (errno == EINTR) continue;
                std::cerr << "hactl: write to " << what_ << " failed: " << std::strerror(errno) << "\n";
                return false;
            }
            off += static_cast<size_t>(n);
        }
        return true;
    }

    // The next line, or nullopt at end of stream / error.
    std::optional<std::string> line() {
        while (true) {
            if (auto l = split_.next()) return l;
            if (split_.overflow()) {
                std::cerr << "hactl: " << what_ << " sent an over-long message\n";
                return std::nullopt;
            }
            char buf[65536];
            ssize_t n = ::read(fd_, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return std::nullopt;
            split_.append(std::string_view(buf, static_cast<size_t>(n)));
        }
    }

    // Sends a request and waits for its response.
    int call(const std::string& command, Json args, Json& result) {
        if (!send(proto::control::Request{1, command, std::move(args)})) return kProtocol;
        auto l = line();
        if (!l) {
            std::cerr << "hactl: " << what_ << " closed the connection without answering\n";
            return kProtocol;
        }
        std::string err;
        auto r = proto::control::decode_response(*l, err);
        if (!r) {
            std::cerr << "hactl: bad answer from " << what_ << ": " << err << "\n";
            return kProtocol;
        }
        if (!r->ok) {
            std::cerr << "hactl: " << r->error << "\n";
            return kFailed;
        }
        result = std::move(r->result);
        return kOk;
    }

private:
    std::string path_;
    std::string what_;
    int fd_ = -1;
    proto::control::LineSplitter split_;
};


}  // namespace duet::hactl
