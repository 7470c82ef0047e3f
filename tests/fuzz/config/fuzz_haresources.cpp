// libFuzzer target: haresources text (with valid ha.cf and authkeys) -> parse, finalize, to_toml and back.
#include "fuzz_common.hpp"

#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace duet::config;
    std::string_view text(reinterpret_cast<const char*>(data), size);
    Config cfg;
    Diagnostics diag;
    parse_hacf(fuzz::kHacf, "ha.cf", cfg, diag);
    parse_authkeys(fuzz::kAuthkeys, "authkeys", cfg, diag);
    parse_haresources(text, "haresources", cfg, diag);
    finalize(cfg, diag);
    fuzz::check_round_trip(cfg, diag);
    return 0;
}
