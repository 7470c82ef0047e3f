// Writes the seed corpus for fuzz_replication: valid frames (header + payload) of every type and bare
// structured payloads. Usage: make_replication_corpus DIR (build it in a -Dfuzz=true configuration;
// not run by default).
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "proto/replication.hpp"

using namespace duet::proto::repl;

namespace {

std::vector<uint8_t> frame(Header h, const std::vector<uint8_t>& payload) {
    h.length = static_cast<uint32_t>(payload.size());
    const auto head = encode_header(h);
    std::vector<uint8_t> out(head.begin(), head.end());
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    Hello hello;
    hello.flags = kHelloEncrypt;
    hello.cluster = "alpha+beta";
    hello.replica = "r0";
    hello.node = "alpha";
    hello.size = 1ull << 30;
    for (size_t i = 0; i < kNonceSize; ++i) hello.nonce[i] = static_cast<uint8_t>(i * 7);
    State state;
    state.role = Role::Primary;
    state.disk = Disk::UpToDate;
    state.flags = kStateCrashedPrimary;
    state.gen = GenIds{0x1122334455667788, 0x99, {0xaa, 0}};
    state.out_of_sync = 4096;
    const std::string reason = "unexpected node gamma (expected beta)";

    std::vector<std::pair<std::string, std::vector<uint8_t>>> seeds = {
        {"hello-payload", encode(hello)},
        {"state-payload", encode(state)},
        {"trim-payload", encode(TrimBody{1ull << 33})},
        {"hello", frame({Type::Hello}, encode(hello))},
        {"auth", frame({Type::Auth}, std::vector<uint8_t>(kMacSize, 0x5a))},
        {"refuse", frame({Type::Refuse}, std::vector<uint8_t>(reason.begin(), reason.end()))},
        {"state", frame({Type::State}, encode(state))},
        {"syncdone", frame({Type::SyncDone}, encode(state))},
        {"bitmap", frame({Type::Bitmap, 0, 0, 3}, std::vector<uint8_t>(16, 0xf0))},
        {"write", frame({Type::Write, kFlagFua, 42, 8192}, std::vector<uint8_t>(64, 0x33))},
        {"writeack", frame({Type::WriteAck, 0, 42, 0, 0, 5}, {})},
        {"trim", frame({Type::Trim, 0, 43, 1ull << 20}, encode(TrimBody{1ull << 32}))},
        {"resyncdata", frame({Type::ResyncData, 0, 7, 4096}, std::vector<uint8_t>(32, 1))},
        {"ping", frame({Type::Ping, 0, 1}, {})},
    };
    for (const auto& [name, bytes] : seeds) {
        const std::string path = std::string(argv[1]) + "/" + name + ".bin";
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        if (!out) {
            std::fprintf(stderr, "cannot write %s\n", path.c_str());
            return 1;
        }
    }
    return 0;
}
