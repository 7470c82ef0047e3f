// libFuzzer target for the replication link codec. Each input is tried
//   1. as a bare payload for every structured decoder (Hello, State, TrimBody);
//   2. as a frame: the first 32 bytes as a header, and when that decodes, the rest as its payload
//      (decoded with the type's decoder when the length matches).
// Whatever decodes must re-encode to exactly the same bytes (every encoding is canonical) and decode
// again to the same value; whatever the header check accepts must satisfy payload_length_ok; a
// rejected header must come with a reason.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "proto/replication.hpp"

namespace {

using namespace duet::proto::repl;

template <typename T>
void check_payload(std::span<const uint8_t> bytes) {
    T m;
    if (decode(bytes, m) != Error::None) return;
    const std::vector<uint8_t> again = encode(m);
    if (again.size() != bytes.size() || (!again.empty() && std::memcmp(again.data(), bytes.data(), bytes.size()) != 0))
        std::abort();
    T m2;
    if (decode(again, m2) != Error::None || !(m2 == m)) std::abort();
}

void check_frame(std::span<const uint8_t> input) {
    if (input.size() < kHeaderSize) return;
    const auto head = input.first<kHeaderSize>();
    Header h;
    const Error e = decode_header(head, h);
    if ((e == Error::None) != header_error_detail(head).empty()) std::abort();
    if (e != Error::None) return;
    const auto again = encode_header(h);
    if (std::memcmp(again.data(), head.data(), kHeaderSize) != 0) std::abort();
    if (!payload_length_ok(h.type, h.length) || h.length > kMaxPayload) std::abort();
    const auto payload = input.subspan(kHeaderSize);
    if (payload.size() != h.length) return;
    switch (h.type) {
        case Type::Hello: check_payload<Hello>(payload); break;
        case Type::State:
        case Type::SyncDone: check_payload<State>(payload); break;
        case Type::Trim: check_payload<TrimBody>(payload); break;
        default: break;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // An exact-size heap copy, so ASan sees any read past the end.
    const std::vector<uint8_t> input(data, data + size);
    check_payload<Hello>(input);
    check_payload<State>(input);
    check_payload<TrimBody>(input);
    check_frame(input);
    return 0;
}
