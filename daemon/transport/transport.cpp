#include "daemon/transport/transport.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "daemon/util/log.hpp"

#ifndef IP_MULTICAST_ALL
#define IP_MULTICAST_ALL 49
#endif
#ifndef IPV6_MULTICAST_ALL
#define IPV6_MULTICAST_ALL 29
#endif

namespace duet::transport {
namespace asio = boost::asio;

namespace {

struct Addr {
    sockaddr_storage ss{};
    socklen_t len = 0;
    int family() const { return ss.ss_family; }
};

std::optional<Addr> parse_ip(const std::string& text, uint16_t port, unsigned scope = 0) {
    Addr a;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a.ss);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
    if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        a.len = sizeof(sockaddr_in);
        return a;
    }
    if (inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        v6->sin6_scope_id = scope;
        a.len = sizeof(sockaddr_in6);
        return a;
    }
    return std::nullopt;
}

std::string to_string(const sockaddr* sa) {
    char buf[INET6_ADDRSTRLEN] = "?";
    uint16_t port = 0;
    if (sa->sa_family == AF_INET) {
        auto* v4 = reinterpret_cast<const sockaddr_in*>(sa);
        inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof buf);
        port = ntohs(v4->sin_port);
        return std::string(buf) + ":" + std::to_string(port);
    }
    if (sa->sa_family == AF_INET6) {
        auto* v6 = reinterpret_cast<const sockaddr_in6*>(sa);
        inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf);
        port = ntohs(v6->sin6_port);
        return "[" + std::string(buf) + "]:" + std::to_string(port);
    }
    return "?";
}

// The interface's first address of `family`, or its IPv4 broadcast address. An address configured
// without one (`ip addr add A/24` without `brd +`) gets the subnet's: address | ~netmask.
std::optional<Addr> interface_address(const std::string& ifname, int family, bool broadcast, uint16_t port) {
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) return std::nullopt;
    std::optional<Addr> out;
    for (ifaddrs* i = list; i && !out; i = i->ifa_next) {
        if (!i->ifa_name || ifname != i->ifa_name || !i->ifa_addr || i->ifa_addr->sa_family != family) continue;
        Addr a;
        if (family == AF_INET) {
            std::memcpy(&a.ss, i->ifa_addr, sizeof(sockaddr_in));
            auto* v4 = reinterpret_cast<sockaddr_in*>(&a.ss);
            if (broadcast) {
                if (!(i->ifa_flags & IFF_BROADCAST) || !i->ifa_netmask) continue;
                const in_addr_t mask = reinterpret_cast<const sockaddr_in*>(i->ifa_netmask)->sin_addr.s_addr;
                in_addr_t brd = v4->sin_addr.s_addr | ~mask;
                const auto* given = reinterpret_cast<const sockaddr_in*>(i->ifa_broadaddr);
                if (given && given->sin_family == AF_INET && given->sin_addr.s_addr != v4->sin_addr.s_addr &&
                    given->sin_addr.s_addr != 0)
                    brd = given->sin_addr.s_addr;
                v4->sin_addr.s_addr = brd;
            }
            v4->sin_port = htons(port);
            a.len = sizeof(sockaddr_in);
        } else {
            if (broadcast) continue;
            std::memcpy(&a.ss, i->ifa_addr, sizeof(sockaddr_in6));
            reinterpret_cast<sockaddr_in6*>(&a.ss)->sin6_port = htons(port);
            a.len = sizeof(sockaddr_in6);
        }
        out = a;
    }
    freeifaddrs(list);
    return out;
}

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

}  // namespace

struct Transport::Socket {
    Socket(asio::io_context& io, config::Path p, int i, Transport& t) : id(i), path(std::move(p)), desc(io), owner(t) {}

    int id;
    config::Path path;
    PathCounters c;
    asio::posix::stream_descriptor desc;
    Transport& owner;
    Addr dest;
    unsigned ifindex = 0;
    bool logged_failure = false;

    bool setopt(int level, int name, const void* v, socklen_t len, const char* what) {
        if (setsockopt(desc.native_handle(), level, name, v, len) == 0) return true;
        c.last_error = errno_text(what);
        return false;
    }
    bool setint(int level, int name, int v, const char* what) { return setopt(level, name, &v, sizeof v, what); }

    void fail(std::string why) {
        c.last_error = std::move(why);
        c.open = false;
        boost::system::error_code ec;
        desc.close(ec);
        if (!logged_failure) {
            log::warning("path " + path.name() + " is not usable: " + c.last_error + " (retrying every second)",
                         {{"DUET_PATH", path.name()}});
            logged_failure = true;
        }
    }

    void open() {
        using config::PathKind;
        ifindex = 0;
        if (!path.interface.empty()) {
            ifindex = if_nametoindex(path.interface.c_str());
            if (ifindex == 0) return fail("interface " + path.interface + " not found");
        }
        std::optional<Addr> bind_addr;
        if (path.kind == PathKind::Bcast) {
            auto b = interface_address(path.interface, AF_INET, true, path.port);
            if (!b) return fail("interface " + path.interface + " has no IPv4 broadcast address");
            dest = *b;
            bind_addr = b;
        } else {
            auto d = parse_ip(path.address, path.port, ifindex);
            if (!d) return fail("bad address " + path.address);
            dest = *d;
            if (path.kind == PathKind::Mcast) {
                bind_addr = dest;
            } else if (!path.interface.empty()) {
                bind_addr = interface_address(path.interface, dest.family(), false, path.port);
                if (!bind_addr) return fail("interface " + path.interface + " has no " +
                                            (dest.family() == AF_INET ? "IPv4" : "IPv6") + " address");
            } else {
                bind_addr = parse_ip(dest.family() == AF_INET ? "0.0.0.0" : "::", path.port);
            }
        }
        int fd = ::socket(dest.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) return fail(errno_text("socket"));
        desc.assign(fd);
        const bool v6 = dest.family() == AF_INET6;
        if (v6 && !setint(IPPROTO_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY")) return fail(c.last_error);
        if (!setint(SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR")) return fail(c.last_error);
        if (!path.interface.empty() &&
            !setopt(SOL_SOCKET, SO_BINDTODEVICE, path.interface.c_str(), static_cast<socklen_t>(path.interface.size()),
                    "SO_BINDTODEVICE"))
            return fail(c.last_error);
        if (path.kind == config::PathKind::Bcast && !setint(SOL_SOCKET, SO_BROADCAST, 1, "SO_BROADCAST"))
            return fail(c.last_error);
        if (!setint(SOL_SOCKET, SO_TIMESTAMPNS, 1, "SO_TIMESTAMPNS")) return fail(c.last_error);
        // A large receive buffer, so a burst of hostile datagrams does not crowd out the peer's
        // heartbeats before we get to read them (FORCE works for root beyond rmem_max).
        constexpr int kRcvBuf = 4 << 20;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &kRcvBuf, sizeof kRcvBuf) != 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kRcvBuf, sizeof kRcvBuf);
        if (::bind(fd, reinterpret_cast<const sockaddr*>(&bind_addr->ss), bind_addr->len) != 0)
            return fail(errno_text(("bind " + to_string(reinterpret_cast<const sockaddr*>(&bind_addr->ss))).c_str()));
        if (path.kind == config::PathKind::Mcast) {
            if (!v6) {
                ip_mreqn mreq{};
                mreq.imr_multiaddr = reinterpret_cast<sockaddr_in*>(&dest.ss)->sin_addr;
                mreq.imr_ifindex = static_cast<int>(ifindex);
                if (!setopt(IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq, "join multicast group")) return fail(c.last_error);
                ip_mreqn ifreq{};
                ifreq.imr_ifindex = static_cast<int>(ifindex);
                if (!setopt(IPPROTO_IP, IP_MULTICAST_IF, &ifreq, sizeof ifreq, "IP_MULTICAST_IF") ||
                    !setint(IPPROTO_IP, IP_MULTICAST_TTL, path.ttl, "IP_MULTICAST_TTL") ||
                    !setint(IPPROTO_IP, IP_MULTICAST_LOOP, path.loop ? 1 : 0, "IP_MULTICAST_LOOP") ||
                    !setint(IPPROTO_IP, IP_MULTICAST_ALL, 0, "IP_MULTICAST_ALL"))
                    return fail(c.last_error);
            } else {
                ipv6_mreq mreq{};
                mreq.ipv6mr_multiaddr = reinterpret_cast<sockaddr_in6*>(&dest.ss)->sin6_addr;
                mreq.ipv6mr_interface = ifindex;
                if (!setopt(IPPROTO_IPV6, IPV6_JOIN_GROUP, &mreq, sizeof mreq, "join multicast group")) return fail(c.last_error);
                int idx = static_cast<int>(ifindex);
                if (!setint(IPPROTO_IPV6, IPV6_MULTICAST_IF, idx, "IPV6_MULTICAST_IF") ||
                    !setint(IPPROTO_IPV6, IPV6_MULTICAST_HOPS, path.ttl, "IPV6_MULTICAST_HOPS") ||
                    !setint(IPPROTO_IPV6, IPV6_MULTICAST_LOOP, path.loop ? 1 : 0, "IPV6_MULTICAST_LOOP") ||
                    !setint(IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0, "IPV6_MULTICAST_ALL"))
                    return fail(c.last_error);
            }
        }
        c.open = true;
        c.last_error.clear();
        if (logged_failure) log::notice("path " + path.name() + " is usable again", {{"DUET_PATH", path.name()}});
        logged_failure = false;
        arm();
    }

    void arm() {
        desc.async_wait(asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& ec) {
            if (ec) return;  // closed or cancelled
            read_some(64);
            if (c.open) arm();
        });
    }

    // Reads up to `max` queued datagrams without blocking.
    void read_some(int max) {
        static thread_local std::vector<uint8_t> buf(65536);
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
        for (int n = 0; n < max && c.open; ++n) {
            sockaddr_storage from{};
            iovec iov{buf.data(), buf.size()};
            msghdr msg{};
            msg.msg_name = &from;
            msg.msg_namelen = sizeof from;
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control;
            msg.msg_controllen = sizeof control;
            ssize_t r = ::recvmsg(desc.native_handle(), &msg, MSG_DONTWAIT | MSG_TRUNC);
            if (r < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                    log::warning("path " + path.name() + ": receive failed: " + std::strerror(errno));
                return;
            }
            ++c.received;
            // MSG_TRUNC returns the real length: a datagram larger than the buffer is passed on with
            // its true size only as far as the buffer goes, so the decoder sees it as oversized.
            size_t len = static_cast<size_t>(r) > buf.size() ? buf.size() : static_cast<size_t>(r);
            owner.on_receive_(id, std::span<const uint8_t>(buf.data(), len), to_string(reinterpret_cast<sockaddr*>(&from)),
                              arrival_of(msg));
        }
    }

    // The kernel's receive time (CLOCK_REALTIME) moved onto the monotonic clock; now if absent.
    static std::chrono::steady_clock::time_point arrival_of(msghdr& msg) {
        auto mono = std::chrono::steady_clock::now();
        for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
            if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_TIMESTAMPNS) continue;
            timespec ts{};
            std::memcpy(&ts, CMSG_DATA(cm), sizeof ts);
            auto real = std::chrono::system_clock::now().time_since_epoch();
            auto at = std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
            auto age = std::chrono::duration_cast<std::chrono::steady_clock::duration>(real - at);
            if (age < std::chrono::steady_clock::duration::zero()) age = {};  // realtime clock stepped
            return mono - age;
        }
        return mono;
    }

    void send(std::span<const uint8_t> bytes) {
        if (!c.open) {
            ++c.send_errors;
            return;
        }
        ssize_t r = ::sendto(desc.native_handle(), bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                             reinterpret_cast<const sockaddr*>(&dest.ss), dest.len);
        if (r < 0) {
            ++c.send_errors;
            std::string e = errno_text("send");
            if (e != c.last_error) log::warning("path " + path.name() + ": " + e, {{"DUET_PATH", path.name()}});
            c.last_error = e;
            if (errno == ENODEV || errno == ENXIO) fail(e);  // interface gone: reopen later
            return;
        }
        if (!c.last_error.empty()) log::notice("path " + path.name() + ": sending works again", {{"DUET_PATH", path.name()}});
        c.last_error.clear();
        ++c.sent;
    }
};

Transport::Transport(asio::io_context& io, std::vector<config::Path> paths, Receive on_receive)
    : io_(io), on_receive_(std::move(on_receive)) {
    int i = 0;
    for (auto& p : paths) sockets_.push_back(std::make_unique<Socket>(io_, std::move(p), i++, *this));
    for (auto& s : sockets_) s->open();
}

Transport::~Transport() = default;

size_t Transport::size() const { return sockets_.size(); }
const config::Path& Transport::path(int i) const { return sockets_.at(static_cast<size_t>(i))->path; }
const PathCounters& Transport::counters(int i) const { return sockets_.at(static_cast<size_t>(i))->c; }
void Transport::send(int i, std::span<const uint8_t> bytes) { sockets_.at(static_cast<size_t>(i))->send(bytes); }

void Transport::drain() {
    for (auto& s : sockets_)
        if (s->c.open) s->read_some(1024);
}

void Transport::retry_closed() {
    for (auto& s : sockets_) {
        if (s->c.open && !s->path.interface.empty() && if_nametoindex(s->path.interface.c_str()) != s->ifindex) {
            s->fail("interface " + s->path.interface + " was removed or replaced");
        }
        if (!s->c.open) s->open();
    }
}

std::vector<std::string> drop_own_ucast(std::vector<config::Path>& paths) {
    std::vector<std::string> dropped;
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) return dropped;
    auto is_local = [&](const std::string& text) {
        auto a = parse_ip(text, 0);
        if (!a) return false;
        for (ifaddrs* i = list; i; i = i->ifa_next) {
            if (!i->ifa_addr || i->ifa_addr->sa_family != a->family()) continue;
            if (a->family() == AF_INET &&
                reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr ==
                    reinterpret_cast<sockaddr_in*>(&a->ss)->sin_addr.s_addr)
                return true;
            if (a->family() == AF_INET6 &&
                std::memcmp(&reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr,
                            &reinterpret_cast<sockaddr_in6*>(&a->ss)->sin6_addr, sizeof(in6_addr)) == 0)
                return true;
        }
        return false;
    };
    std::erase_if(paths, [&](const config::Path& p) {
        if (p.kind != config::PathKind::Ucast || !is_local(p.address)) return false;
        dropped.push_back(p.name());
        return true;
    });
    freeifaddrs(list);
    return dropped;
}

}  // namespace duet::transport
