// libFuzzer target: duet.toml text -> parse_toml, finalize, to_toml and back.
#include "fuzz_common.hpp"

#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace duet::config;
    std::string_view text(reinterpret_cast<const char*>(data), size);
    Config cfg;
    Diagnostics diag;
    parse_toml(text, "duet.toml", cfg, diag);
    if (!cfg.auth.key_file.empty()) cfg.auth.secret = "key-file-content";  // load() would read it
    finalize(cfg, diag);
    fuzz::check_round_trip(cfg, diag);
    return 0;
}
