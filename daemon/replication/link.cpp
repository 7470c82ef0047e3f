// The replication link: handshake, clear frames and AES-256-GCM records. docs/protocol.md,
// "Replication link".
#include "daemon/replication/link.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace duet::replication {

namespace repl = proto::repl;

namespace {

constexpr size_t kReadBuffer = 64 * 1024;
// Reads at least this large go straight into the caller's buffer: a 1 MiB payload is not copied.
constexpr size_t kDirectRead = 16 * 1024;
constexpr size_t kKeySize = 32;  // AES-256
constexpr size_t kIvSize = 12;   // GCM's 96-bit nonce
constexpr size_t kTagSize = 16;
constexpr size_t kRecordLength = 4;  // the sealed record's length prefix
// Records are encrypted and decrypted in pieces of this size, each while it is still in cache.
constexpr size_t kCryptChunk = 256 * 1024;
constexpr std::string_view kKeyLabel = "duet-replica-key-v1";
// After refusing, how long at most we read what the peer still sends before closing (see refuse()).
constexpr auto kMaxDrain = std::chrono::seconds(1);

// A handshake step that failed: what we log, and what we tell the peer in Refuse ("" for nothing:
// the peer closed, refused us itself, or our own configuration is wrong).
struct HandshakeFailure {
    std::string local;
    std::string refuse;
    // Read until the peer's EOF before closing, so that a Duet peer gets the Refuse; not worth it
    // for a peer that has stalled or does not speak the protocol.
    bool drain = true;
};

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }
    int release() { return std::exchange(fd_, -1); }

private:
    int fd_;
};

std::string errno_text(int e) { return std::strerror(e); }

uint32_t load_be32(const uint8_t* p) {
    return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
void store_be32(uint8_t* p, uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (24 - 8 * i));
}

// "198.51.100.2:7788", "[2001:db8::1]:7788", or "local socket" for a socketpair.
std::string describe_peer(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "unconnected socket";
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET) {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        return std::string(host) + ":" + std::to_string(ntohs(a->sin_port));
    }
    if (ss.ss_family == AF_INET6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        return "[" + std::string(host) + "]:" + std::to_string(ntohs(a->sin6_port));
    }
    return "local socket";
}

// A peer's text made safe for a log line: control characters become '?', at most kReasonMax bytes.
std::string printable(std::span<const uint8_t> text) {
    std::string out;
    for (uint8_t c : text.first(std::min(text.size(), repl::kReasonMax)))
        out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
    return out;
}

std::string quoted(const std::string& s) { return "'" + printable({reinterpret_cast<const uint8_t*>(s.data()), s.size()}) + "'"; }

// One direction's key: HKDF-SHA256 of the shared secret, salted with the sender's then the
// receiver's nonce, with both Hellos (sender's first) in the info. Every session and direction gets
// its own key, so the frame counter used as GCM nonce never repeats under one key.
std::array<uint8_t, kKeySize> derive_key(std::string_view secret, const repl::Hello& from, const repl::Hello& to,
                                         std::span<const uint8_t> from_bytes, std::span<const uint8_t> to_bytes) {
    std::vector<uint8_t> salt(from.nonce.begin(), from.nonce.end());
    salt.insert(salt.end(), to.nonce.begin(), to.nonce.end());
    std::vector<uint8_t> info(kKeyLabel.begin(), kKeyLabel.end());
    info.insert(info.end(), from_bytes.begin(), from_bytes.end());
    info.insert(info.end(), to_bytes.begin(), to_bytes.end());
    std::array<uint8_t, kKeySize> key{};
    size_t len = key.size();
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr);
    const bool ok = ctx && EVP_PKEY_derive_init(ctx) > 0 && EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) > 0 &&
                    EVP_PKEY_CTX_set1_hkdf_salt(ctx, salt.data(), int(salt.size())) > 0 &&
                    EVP_PKEY_CTX_set1_hkdf_key(ctx, reinterpret_cast<const unsigned char*>(secret.data()),
                                               int(secret.size())) > 0 &&
                    EVP_PKEY_CTX_add1_hkdf_info(ctx, info.data(), int(info.size())) > 0 &&
                    EVP_PKEY_derive(ctx, key.data(), &len) > 0 && len == key.size();
    EVP_PKEY_CTX_free(ctx);
    if (!ok) throw HandshakeFailure{"key derivation (HKDF-SHA256) failed in OpenSSL", "internal error", false};
    return key;
}

}  // namespace

// ---- AES-256-GCM, one direction ----------------------------------------------------------------

// Each record is sealed under the next value of a 64-bit counter (the 96-bit GCM nonce is 4 zero
// bytes then the counter), with the record's length prefix as additional data. Sender and receiver
// directions have their own key, context and counter, so the two threads never share state.
class Link::Aead {
public:
    Aead(const std::array<uint8_t, kKeySize>& key, bool seal) : ctx_(EVP_CIPHER_CTX_new()), seal_(seal) {
        if (!ctx_ || EVP_CipherInit_ex(ctx_, EVP_aes_256_gcm(), nullptr, key.data(), nullptr, seal ? 1 : 0) != 1 ||
            EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_SET_IVLEN, int(kIvSize), nullptr) != 1) {
            EVP_CIPHER_CTX_free(ctx_);
            throw HandshakeFailure{"AES-256-GCM set-up failed in OpenSSL", "internal error", false};
        }
    }
    ~Aead() { EVP_CIPHER_CTX_free(ctx_); }
    Aead(const Aead&) = delete;
    Aead& operator=(const Aead&) = delete;

    // Starts the next record. False when the counter is exhausted (the link must end: a nonce is
    // never reused) or OpenSSL fails.
    bool begin(std::span<const uint8_t> aad) {
        if (counter_ == UINT64_MAX) return false;
        std::array<uint8_t, kIvSize> iv{};
        for (int i = 0; i < 8; ++i) iv[4 + i] = uint8_t(counter_ >> (56 - 8 * i));
        ++counter_;
        int n = 0;
        return EVP_CipherInit_ex(ctx_, nullptr, nullptr, nullptr, iv.data(), seal_ ? 1 : 0) == 1 &&
               EVP_CipherUpdate(ctx_, nullptr, &n, aad.data(), int(aad.size())) == 1;
    }
    // Encrypts or decrypts n bytes (in == out allowed). GCM is a stream mode: out gets n bytes.
    bool update(const uint8_t* in, uint8_t* out, size_t n) {
        int len = 0;
        return n == 0 || (EVP_CipherUpdate(ctx_, out, &len, in, int(n)) == 1 && size_t(len) == n);
    }
    bool seal_tag(uint8_t* tag) {
        int len = 0;
        uint8_t dummy[16];
        return EVP_CipherFinal_ex(ctx_, dummy, &len) == 1 &&
               EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_GET_TAG, int(kTagSize), tag) == 1;
    }
    // False when the record is not authentic (tampered, truncated or another key).
    bool open_tag(const uint8_t* tag) {
        int len = 0;
        uint8_t dummy[16];
        return EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_SET_TAG, int(kTagSize), const_cast<uint8_t*>(tag)) == 1 &&
               EVP_CipherFinal_ex(ctx_, dummy, &len) == 1;
    }

private:
    EVP_CIPHER_CTX* ctx_;
    bool seal_;
    uint64_t counter_ = 0;
};

// ---- the handshake -----------------------------------------------------------------------------

struct Link::Handshake {
    Link& link;
    const LinkIdentity& me;
    std::chrono::milliseconds timeout;
    Deadline deadline;

    [[noreturn]] void io_failure(Io r, const std::string& err, const std::string& doing) {
        if (r == Io::Timeout)
            throw HandshakeFailure{"handshake timed out after " + std::to_string(timeout.count()) + " ms (" + doing + ")",
                                   "handshake timed out", false};
        if (r == Io::Eof) throw HandshakeFailure{"connection closed by the peer during the handshake (" + doing + ")", ""};
        throw HandshakeFailure{"handshake failed (" + doing + "): " + err, "", false};
    }

    void send_frame(repl::Type type, std::span<const uint8_t> payload, const std::string& doing) {
        repl::Header h;
        h.type = type;
        h.length = uint32_t(payload.size());
        auto head = repl::encode_header(h);
        std::array<iovec, 2> iov{iovec{head.data(), head.size()},
                                 iovec{const_cast<uint8_t*>(payload.data()), payload.size()}};
        std::string err;
        const Io r = link.write_all(iov, &deadline, err);
        if (r == Io::Eof) {
            // The peer has gone: if it said why first, that is the reason to report.
            salvage_refusal();
            io_failure(Io::Eof, err, doing);
        }
        if (r != Io::Ok) io_failure(r, err, doing);
    }

    // Reads a Refuse the peer may have sent before closing, without waiting for more than a moment;
    // throws with its reason if there is one.
    void salvage_refusal() {
        Deadline soon = std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(100));
        std::array<uint8_t, repl::kHeaderSize> head;
        std::string err;
        repl::Header h;
        while (link.read_exact(head.data(), head.size(), &soon, err) == Io::Ok &&
               repl::decode_header(head, h) == repl::Error::None) {
            std::vector<uint8_t> payload(h.length);
            if (link.read_exact(payload.data(), payload.size(), &soon, err) != Io::Ok) return;
            if (h.type == repl::Type::Refuse) throw HandshakeFailure{"refused by the peer: " + printable(payload), ""};
        }
    }

    // Reads the next frame, which must be `expected`; a Refuse ends the handshake with its reason.
    void read_frame(repl::Type expected, std::vector<uint8_t>& payload, const std::string& doing) {
        std::array<uint8_t, repl::kHeaderSize> head;
        std::string err;
        if (Io r = link.read_exact(head.data(), head.size(), &deadline, err); r != Io::Ok) io_failure(r, err, doing);
        repl::Header h;
        if (repl::decode_header(head, h) != repl::Error::None) {
            const std::string what = "bad frame during the handshake: " + repl::header_error_detail(head);
            throw HandshakeFailure{what, "protocol error: " + what, false};
        }
        if (h.type != expected && h.type != repl::Type::Refuse) {
            const std::string what = std::string(expected == repl::Type::Auth ? "expected an " : "expected a ") +
                                     repl::to_string(expected) + " frame, got " + repl::to_string(h.type);
            throw HandshakeFailure{what, "protocol error: " + what, false};
        }
        payload.resize(h.length);
        if (Io r = link.read_exact(payload.data(), payload.size(), &deadline, err); r != Io::Ok) io_failure(r, err, doing);
        if (h.type == repl::Type::Refuse) throw HandshakeFailure{"refused by the peer: " + printable(payload), ""};
    }

    void run() {
        repl::Hello own;
        own.flags = me.encrypt ? repl::kHelloEncrypt : 0;
        own.cluster = me.cluster;
        own.replica = me.replica;
        own.node = me.node;
        own.size = me.size;
        if (RAND_bytes(own.nonce.data(), int(own.nonce.size())) != 1)
            throw HandshakeFailure{"no random bytes from OpenSSL for the handshake nonce", "", false};
        const std::vector<uint8_t> own_bytes = repl::encode(own);  // validated by establish()
        send_frame(repl::Type::Hello, own_bytes, "sending our Hello");

        std::vector<uint8_t> peer_bytes;
        read_frame(repl::Type::Hello, peer_bytes, "waiting for the peer's Hello");
        repl::Hello peer;
        const std::string mine = "node " + me.node;
        const repl::Error e = repl::decode(peer_bytes, peer);
        // The version comes first in every Hello, so a peer whose Hello we cannot parse is still
        // reported as a version mismatch when that is what it is.
        const uint16_t version = e == repl::Error::None ? peer.version
                                                         : uint16_t(peer_bytes[0] << 8 | peer_bytes[1]);
        if (version != repl::kVersion)
            throw HandshakeFailure{"peer speaks replication protocol version " + std::to_string(version) +
                                       ", we speak " + std::to_string(repl::kVersion),
                                   "protocol version " + std::to_string(version) + " not supported: " + mine +
                                       " speaks version " + std::to_string(repl::kVersion)};
        if (e != repl::Error::None)
            throw HandshakeFailure{std::string("malformed Hello: ") + repl::to_string(e),
                                   std::string("protocol error: malformed Hello: ") + repl::to_string(e), false};
        if (peer.cluster != me.cluster)
            throw HandshakeFailure{"peer belongs to cluster " + quoted(peer.cluster) + ", we are in cluster " +
                                       quoted(me.cluster),
                                   "wrong cluster: you are in cluster " + quoted(peer.cluster) + ", " + mine +
                                       " is in cluster " + quoted(me.cluster)};
        if (peer.replica != me.replica)
            throw HandshakeFailure{"peer serves replica " + quoted(peer.replica) + ", ours is " + quoted(me.replica),
                                   "wrong replica: you serve " + quoted(peer.replica) + ", " + mine + " serves " +
                                       quoted(me.replica)};
        if (peer.node != me.peer_node)
            throw HandshakeFailure{"unexpected node: the peer is node " + quoted(peer.node) + ", we expect " +
                                       quoted(me.peer_node),
                                   "unexpected node: you are " + quoted(peer.node) + ", " + mine + " expects " +
                                       quoted(me.peer_node)};
        // A reflected Hello (our own, sent back) is already refused above by its node name; this
        // catches one whose name was changed.
        if (peer.nonce == own.nonce)
            throw HandshakeFailure{"the peer's Hello carries our own nonce (a reflected handshake)", "protocol error", false};
        if (peer.size != me.size)
            throw HandshakeFailure{"peer's device is " + std::to_string(peer.size) + " bytes, ours is " +
                                       std::to_string(me.size),
                                   "device sizes differ: yours is " + std::to_string(peer.size) + " bytes, " + mine +
                                       "'s is " + std::to_string(me.size)};

        const auto proof = repl::auth_proof(me.secret, own_bytes, peer_bytes);
        send_frame(repl::Type::Auth, proof, "sending our Auth");
        std::vector<uint8_t> their_proof;
        read_frame(repl::Type::Auth, their_proof, "waiting for the peer's Auth");
        const auto expected = repl::auth_proof(me.secret, peer_bytes, own_bytes);
        if (!repl::proof_equal(their_proof, expected))
            throw HandshakeFailure{"authentication failed: wrong shared secret (the peer's proof does not match ours)",
                                   "authentication failed: your proof does not match " + mine + "'s shared secret"};

        link.peer_hello_ = peer;
        if ((own.flags | peer.flags) & repl::kHelloEncrypt) {
            link.send_aead_ = std::make_unique<Aead>(derive_key(me.secret, own, peer, own_bytes, peer_bytes), true);
            link.recv_aead_ = std::make_unique<Aead>(derive_key(me.secret, peer, own, peer_bytes, own_bytes), false);
        }
    }

    // Tells the peer why (best effort, never blocks), then reads until its EOF for a while before
    // the socket is closed: closing with unread data would reset the connection, and the peer
    // could lose our Refuse before reading it.
    void refuse(const HandshakeFailure& f) {
        if (f.refuse.empty()) return;
        const std::string text = f.refuse.substr(0, repl::kReasonMax);
        repl::Header h;
        h.type = repl::Type::Refuse;
        h.length = uint32_t(text.size());
        auto head = repl::encode_header(h);
        std::vector<uint8_t> frame(head.size() + text.size());
        std::memcpy(frame.data(), head.data(), head.size());
        std::memcpy(frame.data() + head.size(), text.data(), text.size());
        if (::send(link.fd_, frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) return;
        ::shutdown(link.fd_, SHUT_WR);
        if (!f.drain) return;
        const Deadline until = std::min(deadline, std::chrono::steady_clock::now() + kMaxDrain);
        std::string err;
        for (;;) {
            if (link.wait(POLLIN, until, err) != Io::Ok) return;
            ssize_t r = ::recv(link.fd_, link.rbuf_.data(), link.rbuf_.size(), MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) return;
        }
    }
};

std::unique_ptr<Link> Link::establish(int fd, const LinkIdentity& me, std::chrono::milliseconds timeout) {
    Fd owned(fd);
    const std::string peer = describe_peer(fd);
    // Our own configuration first: these are not the peer's fault, so it is told nothing.
    if (me.secret.empty()) throw LinkError(peer + ": no shared secret configured for replica " + me.replica);
    if (me.node == me.peer_node) throw LinkError(peer + ": our node and the expected peer are both " + me.node);
    try {
        repl::Hello probe;
        probe.cluster = me.cluster;
        probe.replica = me.replica;
        probe.node = me.node;
        repl::encode(probe);
    } catch (const std::invalid_argument& e) {
        throw LinkError(peer + ": our configuration cannot be sent: " + e.what());
    }

    // Blocking I/O after the handshake (the handshake itself polls with MSG_DONTWAIT): one syscall
    // per frame and no busy loop; shutdown() is what unblocks it.
    const int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0 || ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
        throw LinkError(peer + ": cannot make the socket blocking: " + errno_text(errno));
    sockaddr_storage ss{};
    socklen_t sl = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &sl) == 0 &&
        (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)) {
        // Acks and small requests must not wait for Nagle: protocol C latency is every write's latency.
        int one = 1;
        if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
            throw LinkError(peer + ": cannot set TCP_NODELAY: " + errno_text(errno));
    }

    std::unique_ptr<Link> link(new Link(owned.release(), peer));
    Handshake hs{*link, me, timeout, std::chrono::steady_clock::now() + timeout};
    try {
        hs.run();
    } catch (const HandshakeFailure& f) {
        hs.refuse(f);
        throw LinkError(peer + ": " + f.local);
    } catch (const std::exception& e) {  // OpenSSL failures in the codec
        throw LinkError(peer + ": handshake failed: " + e.what());
    }
    return link;
}

Link::Link(int fd, std::string peer) : fd_(fd), peer_(std::move(peer)), rbuf_(kReadBuffer) {}

Link::~Link() { ::close(fd_); }

// ---- socket I/O --------------------------------------------------------------------------------

Link::Io Link::wait(short events, const Deadline& deadline, std::string& err) {
    for (;;) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return Io::Timeout;
        pollfd p{fd_, events, 0};
        const int r = ::poll(&p, 1, int(std::min<int64_t>(left.count(), INT_MAX)));
        if (r > 0) return Io::Ok;  // readable, writable, or an error/hang-up the next call reports
        if (r < 0 && errno != EINTR) {
            err = "poll: " + errno_text(errno);
            return Io::Error;
        }
    }
}

Link::Io Link::read_exact(uint8_t* dst, size_t n, const Deadline* deadline, std::string& err) {
    while (n > 0) {
        if (rpos_ < rend_) {
            const size_t k = std::min(n, rend_ - rpos_);
            std::memcpy(dst, rbuf_.data() + rpos_, k);
            rpos_ += k;
            dst += k;
            n -= k;
            continue;
        }
        if (deadline) {
            if (Io w = wait(POLLIN, *deadline, err); w != Io::Ok) return w;
        }
        const bool direct = n >= kDirectRead;
        const ssize_t r = ::recv(fd_, direct ? dst : rbuf_.data(), direct ? n : rbuf_.size(), deadline ? MSG_DONTWAIT : 0);
        if (r < 0) {
            if (errno == EINTR || (deadline && (errno == EAGAIN || errno == EWOULDBLOCK))) continue;
            err = errno_text(errno);
            return Io::Error;
        }
        if (r == 0) return Io::Eof;
        bytes_received_.fetch_add(uint64_t(r), std::memory_order_relaxed);
        if (direct) {
            dst += r;
            n -= size_t(r);
        } else {
            rpos_ = 0;
            rend_ = size_t(r);
        }
    }
    return Io::Ok;
}

Link::Io Link::write_all(std::span<iovec> iov, const Deadline* deadline, std::string& err) {
    size_t i = 0;
    while (i < iov.size()) {
        if (iov[i].iov_len == 0) {
            ++i;
            continue;
        }
        msghdr m{};
        m.msg_iov = &iov[i];
        m.msg_iovlen = std::min<size_t>(iov.size() - i, IOV_MAX);
        const ssize_t r = ::sendmsg(fd_, &m, MSG_NOSIGNAL | (deadline ? MSG_DONTWAIT : 0));
        if (r < 0) {
            if (errno == EINTR) continue;
            if (deadline && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                if (Io w = wait(POLLOUT, *deadline, err); w != Io::Ok) return w;
                continue;
            }
            const int e = errno;
            err = errno_text(e);
            return e == EPIPE || e == ECONNRESET ? Io::Eof : Io::Error;
        }
        bytes_sent_.fetch_add(uint64_t(r), std::memory_order_relaxed);
        for (size_t done = size_t(r); done > 0;) {
            if (done >= iov[i].iov_len) {
                done -= iov[i].iov_len;
                ++i;
            } else {
                iov[i].iov_base = static_cast<uint8_t*>(iov[i].iov_base) + done;
                iov[i].iov_len -= done;
                done = 0;
            }
        }
    }
    return Io::Ok;
}

bool Link::fail(const std::string& why) {
    {
        std::lock_guard lock(reason_mu_);
        if (reason_.empty()) reason_ = peer_ + ": " + why;
    }
    down_ = true;
    // Both directions end together: a blocked recv returns, the next send fails.
    ::shutdown(fd_, SHUT_RDWR);
    return false;
}

std::string Link::reason() const {
    std::lock_guard lock(reason_mu_);
    return reason_;
}

void Link::shutdown() { fail("link shut down locally"); }

// ---- frames ------------------------------------------------------------------------------------

void Link::send(repl::Header h, std::span<const uint8_t> payload) {
    const iovec part{const_cast<uint8_t*>(payload.data()), payload.size()};
    send(h, std::span<const iovec>(&part, 1));
}

void Link::send(repl::Header h, std::span<const iovec> payload) {
    size_t total = 0;
    for (const auto& p : payload) total += p.iov_len;
    if (total > repl::kMaxPayload || !repl::payload_length_ok(h.type, uint32_t(total)))
        throw std::invalid_argument(std::string("replication link: a ") + repl::to_string(h.type) + " frame cannot carry " +
                                    std::to_string(total) + " payload bytes");
    if (h.type == repl::Type::Hello || h.type == repl::Type::Auth)
        throw std::invalid_argument(std::string("replication link: ") + repl::to_string(h.type) +
                                    " is sent by the handshake only");
    h.length = uint32_t(total);
    const auto head = repl::encode_header(h);

    std::lock_guard lock(send_mu_);
    if (down_) throw LinkError(reason());
    std::string err;
    Io r;
    if (!send_aead_) {
        iov_.clear();
        iov_.push_back(iovec{const_cast<uint8_t*>(head.data()), head.size()});
        iov_.insert(iov_.end(), payload.begin(), payload.end());
        r = write_all(iov_, nullptr, err);
    } else {
        // One sealed record: [length][ciphertext of header + payload][tag], encrypted and written a
        // chunk at a time, so the data is still in cache when the kernel copies it.
        if (sealed_.empty()) sealed_.resize(kRecordLength + repl::kHeaderSize + kCryptChunk + kTagSize);
        uint8_t* out = sealed_.data();
        const size_t room = kRecordLength + repl::kHeaderSize + kCryptChunk;  // the tag always fits after
        store_be32(out, uint32_t(repl::kHeaderSize + total));
        bool ok = send_aead_->begin({out, kRecordLength}) &&
                  send_aead_->update(head.data(), out + kRecordLength, head.size());
        size_t used = kRecordLength + head.size();
        r = Io::Ok;
        for (const auto& part : payload) {
            auto* in = static_cast<const uint8_t*>(part.iov_base);
            for (size_t left = part.iov_len; ok && r == Io::Ok && left > 0;) {
                const size_t k = std::min(left, room - used);
                ok = send_aead_->update(in, out + used, k);
                in += k;
                left -= k;
                used += k;
                if (used == room) {
                    iovec chunk{out, used};
                    r = write_all({&chunk, 1}, nullptr, err);
                    used = 0;
                }
            }
        }
        if (!(ok && send_aead_->seal_tag(out + used))) {
            fail("encryption failed (nonce counter exhausted or OpenSSL error)");
            throw LinkError(reason());
        }
        if (r == Io::Ok) {
            iovec last{out, used + kTagSize};
            r = write_all({&last, 1}, nullptr, err);
        }
    }
    if (r != Io::Ok) {
        fail("send failed: " + err);
        throw LinkError(reason());
    }
}

bool Link::accept_header(const std::array<uint8_t, repl::kHeaderSize>& bytes, repl::Header& h) {
    if (repl::decode_header(bytes, h) != repl::Error::None) return fail("bad frame: " + repl::header_error_detail(bytes));
    if (h.type == repl::Type::Hello || h.type == repl::Type::Auth)
        return fail(std::string("protocol error: a ") + repl::to_string(h.type) + " frame after the handshake");
    return true;
}

bool Link::recv(repl::Header& h, std::vector<uint8_t>& payload) { return recv_any(h, payload); }
bool Link::recv(repl::Header& h, IoBuffer& payload) { return recv_any(h, payload); }

template <class Buffer>
bool Link::recv_any(repl::Header& h, Buffer& payload) {
    if (down_) return false;
    const bool ok = recv_aead_ ? recv_sealed(h, payload) : recv_clear(h, payload);
    if (!ok) return false;
    if (h.type == repl::Type::Refuse) return fail("refused by the peer: " + printable(payload));
    return true;
}

template <class Buffer>
bool Link::recv_clear(repl::Header& h, Buffer& payload) {
    std::array<uint8_t, repl::kHeaderSize> head;
    std::string err;
    Io r = read_exact(head.data(), head.size(), nullptr, err);
    if (r == Io::Eof) return fail("the peer closed the connection");
    if (r != Io::Ok) return fail("receive failed: " + err);
    if (!accept_header(head, h)) return false;
    payload.resize(h.length);
    r = read_exact(payload.data(), payload.size(), nullptr, err);
    if (r == Io::Eof) return fail(std::string("the connection closed in the middle of a ") + repl::to_string(h.type) + " frame");
    if (r != Io::Ok) return fail("receive failed: " + err);
    return true;
}

template <class Buffer>
bool Link::recv_sealed(repl::Header& h, Buffer& payload) {
    std::array<uint8_t, kRecordLength> len_bytes;
    std::string err;
    Io r = read_exact(len_bytes.data(), len_bytes.size(), nullptr, err);
    if (r == Io::Eof) return fail("the peer closed the connection");
    if (r != Io::Ok) return fail("receive failed: " + err);
    const uint32_t body = load_be32(len_bytes.data());
    if (body < repl::kHeaderSize || body > repl::kHeaderSize + repl::kMaxPayload)
        return fail("bad encrypted record length " + std::to_string(body) + " (expected " +
                    std::to_string(repl::kHeaderSize) + ".." + std::to_string(repl::kHeaderSize + repl::kMaxPayload) + ")");
    if (!recv_aead_->begin(len_bytes)) return fail("decryption failed: nonce counter exhausted or OpenSSL error");

    // Decrypt in place a chunk at a time as the bytes arrive (still in cache); nothing is used
    // before the tag has been verified.
    std::array<uint8_t, repl::kHeaderSize> head;
    std::array<uint8_t, kTagSize> tag;
    payload.resize(body - repl::kHeaderSize);
    r = read_exact(head.data(), head.size(), nullptr, err);
    bool ok = r != Io::Ok || recv_aead_->update(head.data(), head.data(), head.size());
    for (size_t at = 0; ok && r == Io::Ok && at < payload.size();) {
        const size_t k = std::min(kCryptChunk, payload.size() - at);
        r = read_exact(payload.data() + at, k, nullptr, err);
        ok = r != Io::Ok || recv_aead_->update(payload.data() + at, payload.data() + at, k);
        at += k;
    }
    if (r == Io::Ok) r = read_exact(tag.data(), tag.size(), nullptr, err);
    if (r == Io::Eof) return fail("the connection closed in the middle of an encrypted record");
    if (r != Io::Ok) return fail("receive failed: " + err);
    if (!ok || !recv_aead_->open_tag(tag.data())) return fail("decryption failed: tampered or wrong key");
    if (!accept_header(head, h)) return false;
    if (h.length != payload.size())
        return fail("an encrypted record of " + std::to_string(payload.size()) + " payload bytes holds a " +
                    repl::to_string(h.type) + " frame announcing " + std::to_string(h.length));
    return true;
}

}  // namespace duet::replication
