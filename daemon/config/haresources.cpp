// Heartbeat's haresources: one resource group per line, `NODE RESOURCE [RESOURCE...]`, a trailing
// backslash continuing the line. Home nodes are checked against the node list in finalize().
#include "daemon/config/model.hpp"
#include "daemon/config/text.hpp"

namespace duet::config {

using namespace detail;

void parse_haresources(std::string_view text, const std::string& file, Config& cfg, Diagnostics& diag) {
    cfg.sources.push_back(file);
    std::vector<Word> words;  // of the group being read (several lines when continued)
    bool continuing = false;
    bool broken = false;      // a line of this group was not text: drop the group
    auto finish = [&] {
        if (!words.empty() && !broken) parse_haresources_words(words, file, "", cfg, diag);
        words.clear();
        continuing = false;
        broken = false;
    };
    for (const auto& l : split_lines(text)) {
        if (auto bad = bad_text(l.text)) {
            diag.error(Origin{file, l.number, ""}, "", "the line contains " + *bad + "; haresources is a text file");
            broken = true;  // and whether it was continued is unknown: it ends its group
            finish();
            continue;
        }
        std::string_view t = trim(l.text);
        if (!continuing && (t.empty() || t[0] == '#')) continue;
        bool continued = !t.empty() && t.back() == '\\';
        if (continued) t.remove_suffix(1);
        for (auto w : split_words(t)) {
            if (w[0] == '#') {  // the rest of the line is a comment (and so is a final backslash)
                continued = false;
                break;
            }
            words.push_back(Word{w, l.number});
        }
        if (continued)
            continuing = true;
        else
            finish();
    }
    finish();
}

}  // namespace duet::config
