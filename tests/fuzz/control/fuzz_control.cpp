// Feeds arbitrary bytes through the control-socket framing and decoders, as a hostile local client
// would; anything decoded must re-encode and decode to the same value.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "proto/control.hpp"

using namespace duet::proto::control;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    LineSplitter split(4096);
    split.append(std::string_view(reinterpret_cast<const char*>(data), size));
    while (auto line = split.next()) {
        std::string err;
        if (auto r = decode_request(*line, err)) {
            auto again = decode_request(encode(*r), err);
            if (!again || again->command != r->command || again->args != r->args) std::abort();
        }
        if (auto r = decode_response(*line, err)) {
            auto again = decode_response(encode(*r), err);
            if (!again || again->ok != r->ok || again->error != r->error) std::abort();
        }
        if (auto e = decode_event(*line, err)) {
            if (!decode_event(encode(*e), err)) std::abort();
        }
    }
    return 0;
}
