// The replication link: one authenticated, optionally encrypted, connection between the two
// engines of a replica, carrying proto/replication.hpp frames. Wire format and handshake:
// docs/protocol.md, "Replication link".
//
// Link::establish runs the handshake on a connected socket and returns a link only when the peer
// has proven it knows the shared secret and describes the same cluster, replica, version and device
// size; otherwise it throws LinkError with a log-ready reason. After that, one thread may receive
// while any number of threads send (frames are kept whole and in order by an internal mutex).
// Connecting, accepting, retrying and keepalive pings are the engine's business.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "daemon/replication/io_buffer.hpp"
#include "proto/replication.hpp"

namespace duet::replication {

struct LinkIdentity {
    std::string cluster;    // cluster name; the peer must be in the same cluster
    std::string replica;    // replica name; the peer must serve the same replica
    std::string node;       // our node name
    std::string peer_node;  // the node we expect at the other end
    uint64_t size = 0;      // our device size in bytes; a peer with another size is refused
    std::string secret;     // shared secret (non-empty)
    bool encrypt = false;   // we want encryption; the link is encrypted when either side wants it
};

// what() is a log-ready reason naming the peer, e.g.
// "198.51.100.2:41234: authentication failed: wrong shared secret (...)".
class LinkError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Link {
public:
    // Runs the handshake on a connected stream socket (TCP, or a Unix socketpair in tests); takes
    // ownership of `fd` and closes it on failure. Both sides send Hello, then Auth (a proof over
    // both Hellos), then verify the peer's. The whole handshake is bounded by `timeout`. On any
    // mismatch or protocol error it sends Refuse with the reason when it can, then throws LinkError.
    static std::unique_ptr<Link> establish(int fd, const LinkIdentity& me, std::chrono::milliseconds timeout);

    ~Link();
    Link(const Link&) = delete;
    Link& operator=(const Link&) = delete;

    // Sends one frame; h.length is set from the payload. Throws std::invalid_argument for a frame
    // the peer would reject (payload too large or not allowed for the type, or a handshake type),
    // LinkError when the link has failed or was shut down. A failed send ends the link (the
    // receiver sees it too). Thread-safe. In clear mode the payload goes out with one sendmsg
    // straight from the caller's buffers.
    void send(proto::repl::Header h, std::span<const uint8_t> payload = {});
    void send(proto::repl::Header h, std::span<const iovec> payload);

    // Receives the next frame into `h` and `payload` (resized to the frame's length; reuse the
    // vector: no allocation once it has grown). Blocks. Returns false when the link has ended: EOF,
    // an error, a protocol violation, a Refuse from the peer, or shutdown(); reason() says which.
    // One receiving thread at a time.
    bool recv(proto::repl::Header& h, std::vector<uint8_t>& payload);
    // The same into an aligned buffer (the engine writes it to its O_DIRECT disk as it is).
    bool recv(proto::repl::Header& h, IoBuffer& payload);

    // Ends the link from any thread: a blocked recv returns false, later sends throw.
    void shutdown();

    // Why the link ended ("" while it works), prefixed with the peer's address.
    std::string reason() const;
    const std::string& peer() const { return peer_; }  // "198.51.100.2:7788"
    bool encrypted() const { return send_aead_ != nullptr; }
    const proto::repl::Hello& peer_hello() const { return peer_hello_; }
    // Bytes written to and read from the socket (frames, records, handshake), for status counters.
    uint64_t bytes_sent() const { return bytes_sent_.load(std::memory_order_relaxed); }
    uint64_t bytes_received() const { return bytes_received_.load(std::memory_order_relaxed); }

private:
    class Aead;  // one direction's AES-256-GCM state (link.cpp)
    struct Handshake;
    Link(int fd, std::string peer);

    using Deadline = std::chrono::steady_clock::time_point;
    enum class Io { Ok, Eof, Timeout, Error };
    // Reads exactly n bytes through the read buffer (large reads go straight to `dst`). With a
    // deadline (the handshake) it polls and never waits past it. `err` says what failed.
    Io read_exact(uint8_t* dst, size_t n, const Deadline* deadline, std::string& err);
    // Writes every iovec (modifies `iov` to track progress), MSG_NOSIGNAL. Eof: the peer has
    // closed or reset the connection.
    Io write_all(std::span<iovec> iov, const Deadline* deadline, std::string& err);
    Io wait(short events, const Deadline& deadline, std::string& err);
    template <class Buffer>
    bool recv_any(proto::repl::Header& h, Buffer& payload);
    template <class Buffer>
    bool recv_clear(proto::repl::Header& h, Buffer& payload);
    template <class Buffer>
    bool recv_sealed(proto::repl::Header& h, Buffer& payload);
    bool accept_header(const std::array<uint8_t, proto::repl::kHeaderSize>& bytes, proto::repl::Header& h);
    bool fail(const std::string& why);  // records the first reason, shuts the socket; returns false

    int fd_;
    std::string peer_;
    proto::repl::Hello peer_hello_;

    // Receiver state (the one receiving thread, or establish()).
    std::vector<uint8_t> rbuf_;
    size_t rpos_ = 0, rend_ = 0;
    std::unique_ptr<Aead> recv_aead_;

    // Sender state, under send_mu_.
    std::mutex send_mu_;
    std::vector<iovec> iov_;
    std::vector<uint8_t> sealed_;
    std::unique_ptr<Aead> send_aead_;

    std::atomic<bool> down_{false};  // failed or shut down
    mutable std::mutex reason_mu_;
    std::string reason_;
    std::atomic<uint64_t> bytes_sent_{0}, bytes_received_{0};
};

}  // namespace duet::replication
