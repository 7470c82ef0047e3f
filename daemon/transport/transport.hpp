// Heartbeat transport: one UDP socket per configured path (mcast IPv4/IPv6, bcast, ucast), each
// bound to its interface so a datagram is attributed to the path it arrived on. Sends one datagram
// per path; receives on all. A path whose interface is missing or down is retried, never fatal.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "daemon/config/model.hpp"
#include "daemon/util/asio.hpp"

namespace duet::transport {

struct PathCounters {
    uint64_t sent = 0;
    uint64_t send_errors = 0;
    uint64_t received = 0;      // datagrams, before any check
    bool open = false;          // socket set up and usable
    std::string last_error;     // why it is not open, or the last send error
};

class Transport {
public:
    // `source` is "198.51.100.100:694" (for logs); `bytes` is only valid during the call; `arrival`
    // is when the kernel received the datagram (not when we read it: if duetd was stopped, the
    // peer's heartbeats still arrived on time).
    using Receive = std::function<void(int path, std::span<const uint8_t> bytes, const std::string& source,
                                       std::chrono::steady_clock::time_point arrival)>;

    Transport(boost::asio::io_context& io, std::vector<config::Path> paths, Receive on_receive);
    ~Transport();
    Transport(const Transport&) = delete;
    Transport& operator=(const Transport&) = delete;

    size_t size() const;
    const config::Path& path(int i) const;
    const PathCounters& counters(int i) const;

    // Sends `bytes` on path i (no-op, counted as an error, when the path is not open).
    void send(int i, std::span<const uint8_t> bytes);

    // Reads every datagram already queued on every socket, without blocking, and delivers them.
    // Called before deciding a death, so that a daemon that was itself stopped (SIGSTOP, a VM pause)
    // reads what arrived meanwhile before it blames the peer.
    void drain();

    // Tries again to open paths that are not open (interface appeared, address came up).
    void retry_closed();

private:
    struct Socket;
    boost::asio::io_context& io_;
    std::vector<std::unique_ptr<Socket>> sockets_;
    Receive on_receive_;
};

// Drops ucast paths whose address is one of this host's own addresses (the same file serves both
// nodes and lists both addresses). Returns the names of the dropped paths.
std::vector<std::string> drop_own_ucast(std::vector<config::Path>& paths);

}  // namespace duet::transport
