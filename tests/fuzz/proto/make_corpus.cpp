// Writes the seed corpus for fuzz_heartbeat: valid packets sealed with the fuzzer's key and cluster.
// Usage: make_heartbeat_corpus DIR   (build it in a -Dfuzz=true configuration; not run by default)
#include <cstdio>
#include <fstream>
#include <string>

#include "proto/heartbeat.hpp"
#include "tests/fuzz/proto/fuzz_params.hpp"

using namespace duet::proto;

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    const uint64_t cluster = cluster_id_of(duet::fuzz::kHeartbeatCluster);
    auto base = [&] {
        Heartbeat hb;
        hb.cluster_id = cluster;
        hb.node = "alpha";
        hb.generation = 1763780000;
        hb.sequence = 1;
        hb.state = NodeState::Active;
        hb.interval_ms = 2000;
        return hb;
    };
    std::vector<std::pair<std::string, Heartbeat>> seeds;
    seeds.emplace_back("minimal", base());
    {
        Heartbeat hb = base();
        hb.node = "b";
        hb.state = NodeState::Starting;
        hb.sequence = 0;
        seeds.emplace_back("starting", hb);
    }
    {
        Heartbeat hb = base();
        hb.state = NodeState::Leaving;
        hb.tlvs = {Tlv{1, {0, 1, 2, 3}}, Tlv{2, {}}, Tlv{0xffff, {0xff}}};
        seeds.emplace_back("tlvs", hb);
    }
    {
        Heartbeat hb = base();
        hb.node = std::string(kNodeNameMax, 'n');
        hb.sequence = UINT64_MAX;
        hb.generation = UINT64_MAX;
        hb.interval_ms = UINT32_MAX;
        seeds.emplace_back("max-name", hb);
    }
    {
        Heartbeat hb = base();
        const size_t used = encode(hb, duet::fuzz::kHeartbeatKey).size();
        hb.tlvs = {Tlv{0x1234, std::vector<uint8_t>(kHeartbeatMaxSize - used - 4, 0x5a)}};
        seeds.emplace_back("max-size", hb);
    }
    for (const auto& [name, hb] : seeds) {
        const auto bytes = encode(hb, duet::fuzz::kHeartbeatKey);
        const std::string path = std::string(argv[1]) + "/" + name + ".bin";
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        if (!out) {
            std::fprintf(stderr, "%s: cannot write\n", path.c_str());
            return 1;
        }
        std::printf("%s: %zu bytes\n", path.c_str(), bytes.size());
    }
    return 0;
}
