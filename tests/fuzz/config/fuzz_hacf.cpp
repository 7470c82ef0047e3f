// libFuzzer target: ha.cf text (with a valid authkeys) -> parse, finalize, to_toml and back.
#include "fuzz_common.hpp"

#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace duet::config;
    std::string_view text(reinterpret_cast<const char*>(data), size);
    Config cfg;
    Diagnostics diag;
    parse_hacf(text, "ha.cf", cfg, diag);
    parse_authkeys(fuzz::kAuthkeys, "authkeys", cfg, diag);
    finalize(cfg, diag);
    fuzz::check_round_trip(cfg, diag);
    return 0;
}
