// The cluster-state TLV decoder on arbitrary bytes: never crashes; whatever decodes re-encodes to
// the same bytes (the encoding has one valid form).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "proto/cluster_state.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string err;
    auto d = duet::proto::decode_cluster_state(std::span<const uint8_t>(data, size), err);
    if (d) {
        auto again = duet::proto::encode(*d);
        if (again.size() != size || !std::equal(again.begin(), again.end(), data)) std::abort();
    }
    return 0;
}
