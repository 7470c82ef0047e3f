// libFuzzer target: drbd.conf text (with the seeds' ha.cf and a valid authkeys) -> parse_drbdconf,
// finalize, to_toml and back. The first include names the input itself, so that included files
// (and a resource defined twice through them) are fuzzed too.
#include "fuzz_common.hpp"

#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace duet::config;
    std::string text(reinterpret_cast<const char*>(data), size);
    Config cfg;
    Diagnostics diag;
    parse_hacf(fuzz::kHacf, "ha.cf", cfg, diag);
    parse_authkeys(fuzz::kAuthkeys, "authkeys", cfg, diag);
    bool included = false;
    IncludeReader reader = [&](const std::string& pattern, const Origin&, Diagnostics&) {
        std::vector<IncludedFile> files;
        if (!included) files.push_back(IncludedFile{pattern, text});
        included = true;
        return files;
    };
    parse_drbdconf(text, "/etc/drbd.conf", cfg, diag, reader);
    finalize(cfg, diag);
    fuzz::check_round_trip(cfg, diag);
    return 0;
}
