// libFuzzer target for the heartbeat codec. Each input is decoded twice:
//   1. as is: exercises size, magic, version, structure, cluster and MAC rejection;
//   2. "resealed": the last 32 bytes replaced by the correct HMAC-SHA256 of the bytes before them,
//      so mutated structures also reach a successful decode.
// Every successful decode must re-encode to exactly the input bytes (the encoding is canonical) and
// decode again to the same Heartbeat.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "proto/heartbeat.hpp"
#include "tests/fuzz/proto/fuzz_params.hpp"

namespace {

using namespace duet::proto;

void check_round_trip(std::span<const uint8_t> input, uint64_t cluster) {
    const DecodeResult r = decode(input, cluster, duet::fuzz::kHeartbeatKey);
    if (r.error != DecodeError::None) {
        if (r.hb != Heartbeat{}) std::abort();  // a failed decode returns no data
        return;
    }
    const std::vector<uint8_t> again = encode(r.hb, duet::fuzz::kHeartbeatKey);
    if (again.size() != input.size() || std::memcmp(again.data(), input.data(), input.size()) != 0) std::abort();
    const DecodeResult r2 = decode(again, cluster, duet::fuzz::kHeartbeatKey);
    if (r2.error != DecodeError::None || !(r2.hb == r.hb)) std::abort();
    // A different key must never authenticate it.
    if (decode(input, cluster, "fuzz-key2").error != DecodeError::BadMac) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const uint64_t cluster = cluster_id_of(duet::fuzz::kHeartbeatCluster);
    // An exact-size heap copy, so ASan sees any read past the end.
    const std::vector<uint8_t> input(data, data + size);
    check_round_trip(input, cluster);

    if (size >= 32 && size <= kHeartbeatMaxSize + 64) {
        std::vector<uint8_t> sealed(input);
        unsigned int len = 0;
        const auto key = duet::fuzz::kHeartbeatKey;
        if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), sealed.data(), size - 32,
                 sealed.data() + size - 32, &len) == nullptr || len != 32)
            std::abort();
        check_round_trip(sealed, cluster);
    }
    return 0;
}
