// replprobe: a hostile or mistaken peer for the replication port, for lab tests.
//   replprobe ADDRESS PORT garbage [N]       connects and sends N random bytes (default 4096)
//   replprobe ADDRESS PORT half-hello        sends the first half of a valid Hello, then waits
//   replprobe ADDRESS PORT handshake [--cluster C] [--replica R] [--node N] [--peer P]
//                                    [--size BYTES] [--secret S]
//                                            a full handshake with these (possibly wrong) values
// Prints what happened ("refused: REASON", "closed by peer after N ms", "connected") and exits 0
// when the peer refused or closed, 1 when it accepted (a handshake that should have failed), 2 on
// usage or local errors.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "daemon/replication/link.hpp"
#include "proto/replication.hpp"

namespace pr = duet::proto::repl;

static int dial(const std::string& ip, int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, ip.c_str(), &a.sin_addr) != 1) return -1;
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// Waits until the peer closes the connection (or 30 s); prints how long it took.
static int wait_closed(int fd) {
    auto t0 = std::chrono::steady_clock::now();
    char buf[4096];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 30000) <= 0) {
            std::cout << "still open after 30 s\n";
            return 1;
        }
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
    }
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    std::cout << "closed by peer after " << ms << " ms\n";
    return 0;
}

int main(int argc, char** argv) {
    if (argc < 4) {
        std::cerr << "usage: replprobe ADDRESS PORT garbage [N] | half-hello | handshake [options]\n";
        return 2;
    }
    std::string ip = argv[1], mode = argv[3];
    int port = std::atoi(argv[2]);
    int fd = dial(ip, port);
    if (fd < 0) {
        std::cerr << "replprobe: cannot connect to " << ip << ":" << port << ": " << std::strerror(errno) << "\n";
        return 2;
    }
    if (mode == "garbage") {
        size_t n = argc > 4 ? std::stoul(argv[4]) : 4096;
        std::vector<uint8_t> junk(n);
        std::mt19937 rng(std::random_device{}());
        for (auto& b : junk) b = static_cast<uint8_t>(rng());
        (void)!::write(fd, junk.data(), junk.size());
        return wait_closed(fd);
    }
    if (mode == "half-hello") {
        pr::Hello h;
        h.cluster = "probe";
        h.replica = "r0";
        h.node = "probe";
        h.size = 1;
        auto body = pr::encode(h);
        auto hdr = pr::encode_header(pr::Header{pr::Type::Hello, 0, 0, 0, static_cast<uint32_t>(body.size()), 0});
        std::vector<uint8_t> all(hdr.begin(), hdr.end());
        all.insert(all.end(), body.begin(), body.end());
        (void)!::write(fd, all.data(), all.size() / 2);
        return wait_closed(fd);
    }
    if (mode == "handshake") {
        duet::replication::LinkIdentity id;
        id.cluster = "lab";
        id.replica = "r0";
        id.node = "alpha";
        id.peer_node = "beta";
        id.secret = "x";
        for (int i = 4; i + 1 < argc; i += 2) {
            std::string k = argv[i], v = argv[i + 1];
            if (k == "--cluster") id.cluster = v;
            else if (k == "--replica") id.replica = v;
            else if (k == "--node") id.node = v;
            else if (k == "--peer") id.peer_node = v;
            else if (k == "--size") id.size = std::stoull(v);
            else if (k == "--secret") id.secret = v;
            else {
                std::cerr << "replprobe: unknown option " << k << "\n";
                return 2;
            }
        }
        try {
            auto link = duet::replication::Link::establish(fd, id, std::chrono::milliseconds(10000));
            std::cout << "connected\n";
            return 1;
        } catch (const std::exception& e) {
            std::cout << "refused: " << e.what() << "\n";
            return 0;
        }
    }
    std::cerr << "replprobe: unknown mode " << mode << "\n";
    return 2;
}
