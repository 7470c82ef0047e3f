// hbflood: sends hostile heartbeat datagrams to a heartbeat path, for the lab's rejection test.
// Kinds: random bytes, wrong key, replays of captured genuine packets, truncated genuine packets,
// oversized datagrams, wrong cluster, unknown node, bad version. Prints what it sent, by kind, as
// JSON. Sends only to the address it is given (the lab's multicast group or a lab node).
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "proto/heartbeat.hpp"

namespace {

[[noreturn]] void die(const std::string& m) {
    std::cerr << "hbflood: " << m << "\n";
    std::exit(2);
}

struct Options {
    std::string iface, group = "239.0.0.10", cluster, key, capture_node;
    uint16_t port = 694;
    int count = 10000;
    int capture = 20;
    std::vector<std::string> kinds{"random", "wrong_key", "replay", "truncated", "oversized"};
};

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto v = [&]() -> std::string {
            if (i + 1 >= argc) die(a + " needs a value");
            return argv[++i];
        };
        if (a == "--iface") o.iface = v();
        else if (a == "--group") o.group = v();
        else if (a == "--port") o.port = static_cast<uint16_t>(std::stoi(v()));
        else if (a == "--count") o.count = std::stoi(v());
        else if (a == "--cluster") o.cluster = v();
        else if (a == "--key") o.key = v();
        else if (a == "--capture-node") o.capture_node = v();
        else if (a == "--capture") o.capture = std::stoi(v());
        else if (a == "--kinds") {
            o.kinds.clear();
            std::string s = v();
            size_t p = 0;
            while (p <= s.size()) {
                size_t c = s.find(',', p);
                if (c == std::string::npos) c = s.size();
                o.kinds.push_back(s.substr(p, c - p));
                p = c + 1;
            }
        } else die("unknown option " + a);
    }
    if (o.iface.empty() || o.cluster.empty() || o.key.empty() || o.capture_node.empty())
        die("usage: hbflood --iface IF --cluster NAME --key KEY --capture-node NODE [--group G] [--port P] [--count N] [--kinds a,b]");
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    Options o = parse(argc, argv);
    unsigned ifindex = if_nametoindex(o.iface.c_str());
    if (!ifindex) die("no interface " + o.iface);
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    ::setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, o.iface.c_str(), static_cast<socklen_t>(o.iface.size()));
    sockaddr_in bind_addr{};
    bind_addr.sin_family = AF_INET;
    bind_addr.sin_port = htons(o.port);
    if (inet_pton(AF_INET, o.group.c_str(), &bind_addr.sin_addr) != 1) die("bad group " + o.group);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&bind_addr), sizeof bind_addr) != 0) die(std::string("bind: ") + std::strerror(errno));
    ip_mreqn mreq{};
    mreq.imr_multiaddr = bind_addr.sin_addr;
    mreq.imr_ifindex = static_cast<int>(ifindex);
    if (::setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) != 0) die("join group failed");
    ip_mreqn ifreq{};
    ifreq.imr_ifindex = static_cast<int>(ifindex);
    ::setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &ifreq, sizeof ifreq);
    int zero = 0;
    ::setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &zero, sizeof zero);

    const uint64_t cid = duet::proto::cluster_id_of(o.cluster);
    // Capture genuine packets from one node (with a 30 s limit).
    std::vector<std::vector<uint8_t>> captured;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (static_cast<int>(captured.size()) < o.capture && std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 500) <= 0) continue;
        std::vector<uint8_t> buf(2048);
        ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
        if (n <= 0) continue;
        buf.resize(static_cast<size_t>(n));
        auto r = duet::proto::decode(buf, cid, o.key);
        if (r.error == duet::proto::DecodeError::None && r.hb.node == o.capture_node) captured.push_back(buf);
    }
    if (static_cast<int>(captured.size()) < o.capture) die("captured only " + std::to_string(captured.size()) + " packets from " + o.capture_node);

    std::mt19937_64 rng(12345);
    auto random_bytes = [&](size_t n) {
        std::vector<uint8_t> b(n);
        for (auto& x : b) x = static_cast<uint8_t>(rng());
        return b;
    };
    auto genuine = [&](size_t i) { return captured[i % captured.size()]; };
    auto forged = [&](const std::string& key, uint64_t cluster, const std::string& node, uint64_t seq) {
        duet::proto::Heartbeat hb;
        hb.cluster_id = cluster;
        hb.node = node;
        hb.generation = ~0ull >> 1;  // "newer than anything": must still be refused
        hb.sequence = seq;
        hb.state = duet::proto::NodeState::Active;
        hb.interval_ms = 100;
        return duet::proto::encode(hb, key);
    };

    sockaddr_in dest = bind_addr;
    std::map<std::string, int> sent;
    for (int i = 0; i < o.count; ++i) {
        const std::string& kind = o.kinds[static_cast<size_t>(i) % o.kinds.size()];
        std::vector<uint8_t> pkt;
        if (kind == "random") pkt = random_bytes(1 + rng() % 1400);
        else if (kind == "wrong_key") pkt = forged("not-the-key-" + std::to_string(i), cid, o.capture_node, static_cast<uint64_t>(i));
        else if (kind == "replay") pkt = genuine(static_cast<size_t>(i));
        else if (kind == "truncated") {
            pkt = genuine(static_cast<size_t>(i));
            pkt.resize(rng() % pkt.size());  // 0 .. size-1 bytes
        } else if (kind == "oversized") pkt = random_bytes(duet::proto::kHeartbeatMaxSize + 1 + rng() % 8000);
        else if (kind == "wrong_cluster") pkt = forged(o.key, cid ^ 1, o.capture_node, static_cast<uint64_t>(i));
        else if (kind == "unknown_node") pkt = forged(o.key, cid, "intruder", static_cast<uint64_t>(i));
        else if (kind == "bad_version") {
            pkt = genuine(static_cast<size_t>(i));
            pkt[4] ^= 0x80;
        } else die("unknown kind " + kind);
        if (::sendto(fd, pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr*>(&dest), sizeof dest) < 0)
            die(std::string("send: ") + std::strerror(errno));
        ++sent[kind];
        if (i % 200 == 199) ::usleep(2000);  // stay under the receivers' socket buffers
    }
    nlohmann::json out = sent;
    out["total"] = o.count;
    std::cout << out.dump() << "\n";
    return 0;
}
