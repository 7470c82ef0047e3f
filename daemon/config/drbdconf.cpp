// DRBD's drbd.conf (8.3 and 8.4 syntax), read as it is: its resources become replicas, the options
// Duet has no use for are warned about with what Duet does instead, and anything else is an error
// naming the file and line. The grammar: `keyword [value...] ;` or `keyword [value...] { ... }`,
// values are words or "quoted strings", `#` starts a comment, `skip [...] { ... }` is ignored.
// Reading happens in two steps: each file becomes a tree of statements, then the tree is
// interpreted. `common` settings apply to every resource whatever the order of the files.
#include "daemon/config/model.hpp"
#include "daemon/config/text.hpp"

#include <map>
#include <set>

namespace duet::config {

using namespace detail;

namespace {

constexpr int kMaxDepth = 16;          // sections nested deeper are refused (DRBD nests four at most)
constexpr int kMaxIncludeDepth = 8;    // includes within includes

// ---------------------------------------------------------------------------------------------
// Step 1: text -> statements.

struct Token {
    enum Kind { Word, String, Open, Close, Semi, End } kind = End;
    std::string text;
    int line = 0;
};

class Lexer {
public:
    explicit Lexer(std::string_view text) : s_(text) {
        if (s_.substr(0, 3) == "\xEF\xBB\xBF") i_ = 3;
    }

    // The next token; End at the end of the text or after an error (then `error` is set).
    Token next() {
        while (i_ < s_.size()) {
            char c = s_[i_];
            if (c == '\n') {
                ++line_;
                ++i_;
            } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
                ++i_;
            } else if (c == '#') {  // a comment, to the end of the line
                while (i_ < s_.size() && s_[i_] != '\n') ++i_;
            } else {
                break;
            }
        }
        Token t;
        t.line = line_;
        if (i_ >= s_.size()) return t;
        char c = s_[i_];
        if (c == '{' || c == '}' || c == ';') {
            t.kind = c == '{' ? Token::Open : c == '}' ? Token::Close : Token::Semi;
            t.text = std::string(1, c);
            ++i_;
            return t;
        }
        if (c == '"') {
            ++i_;
            t.kind = Token::String;
            while (true) {
                if (i_ >= s_.size() || s_[i_] == '\n') {
                    error = "a quoted value opened here is not closed on its line (missing '\"')";
                    error_line = t.line;
                    return Token{Token::End, "", line_};
                }
                char d = s_[i_++];
                if (d == '"') break;
                if (d == '\\' && i_ < s_.size() && s_[i_] != '\n') d = s_[i_++];
                t.text += d;
            }
            return t;
        }
        t.kind = Token::Word;
        // A word runs to a space or a delimiter; a '#' inside a word is part of it.
        while (i_ < s_.size()) {
            char d = s_[i_];
            if (d == ' ' || d == '\t' || d == '\r' || d == '\n' || d == '\f' || d == '\v' || d == '{' || d == '}' ||
                d == ';' || d == '"')
                break;
            t.text += d;
            ++i_;
        }
        return t;
    }

    std::optional<std::string> error;
    int error_line = 0;

private:
    std::string_view s_;
    size_t i_ = 0;
    int line_ = 1;
};

struct Stmt {
    std::vector<Token> words;  // the keyword, then its values
    bool block = false;        // `keyword ... { body }`
    std::vector<Stmt> body;
    int line = 0;
    const std::string& keyword() const { return words[0].text; }
    size_t nvalues() const { return words.size() - 1; }
    const std::string& value(size_t i) const { return words[i + 1].text; }
};

class TreeParser {
public:
    TreeParser(std::string_view text, const std::string& file, Diagnostics& diag) : lex_(text), file_(file), diag_(diag) {}

    // False after a syntax error (reported): the file is then not interpreted at all, since
    // what follows an unbalanced brace cannot be placed.
    bool parse(std::vector<Stmt>& out) { return block(out, 0, 0); }

private:
    bool fail(int line, const std::string& msg) {
        diag_.error(Origin{file_, line, ""}, "", msg);
        return false;
    }

    Token next() {
        Token t = lex_.next();
        if (lex_.error && !reported_) {
            reported_ = true;
            fail(lex_.error_line, *lex_.error);
        }
        return t;
    }

    static std::string shown(const Stmt& st) {
        std::string s;
        for (const auto& w : st.words) s += (s.empty() ? "" : " ") + (w.kind == Token::String ? "\"" + w.text + "\"" : w.text);
        return quote(s);
    }

    // Statements up to the '}' that closes the section opened at `open_line` (0: to the end).
    bool block(std::vector<Stmt>& out, int depth, int open_line) {
        while (true) {
            Token t = next();
            if (reported_) return false;
            switch (t.kind) {
            case Token::End:
                if (open_line == 0) return true;
                return fail(open_line, "the section opened here with '{' is never closed (a '}' is missing)");
            case Token::Close:
                if (open_line != 0) return true;
                return fail(t.line, "'}' without a section to close");
            case Token::Semi:
                continue;  // an empty statement, as after "};"
            case Token::Open:
                return fail(t.line, "'{' without a keyword before it (expected, say, `resource r0 {`)");
            case Token::Word:
            case Token::String:
                break;
            }
            if (t.kind == Token::Word && t.text == "skip") {
                if (!skip(t.line)) return false;
                continue;
            }
            Stmt st;
            st.line = t.line;
            st.words.push_back(std::move(t));
            while (true) {
                Token u = next();
                if (reported_) return false;
                if (u.kind == Token::Word || u.kind == Token::String) {
                    st.words.push_back(std::move(u));
                    continue;
                }
                if (u.kind == Token::Semi) break;
                if (u.kind == Token::Open) {
                    if (depth + 1 > kMaxDepth)
                        return fail(u.line, "sections nested more than " + std::to_string(kMaxDepth) + " deep");
                    st.block = true;
                    if (!block(st.body, depth + 1, u.line)) return false;
                    break;
                }
                return fail(st.words.back().line, "expected ';' after " + shown(st));
            }
            out.push_back(std::move(st));
        }
    }

    // `skip [anything] { anything with balanced braces }`: DRBD's way to comment out a section.
    bool skip(int line) {
        Token t = next();
        while (t.kind == Token::Word || t.kind == Token::String || t.kind == Token::Semi) t = next();
        if (reported_) return false;
        if (t.kind != Token::Open) return fail(line, "expected `skip { ... }`: a '{' after skip");
        int depth = 1;
        while (depth > 0) {
            t = next();
            if (reported_) return false;
            if (t.kind == Token::End) return fail(line, "the skip section opened here is never closed (a '}' is missing)");
            if (t.kind == Token::Open) ++depth;
            if (t.kind == Token::Close) --depth;
        }
        return true;
    }

    Lexer lex_;
    const std::string& file_;
    Diagnostics& diag_;
    bool reported_ = false;
};

// ---------------------------------------------------------------------------------------------
// Step 2: statements -> replicas.

// Options Duet reads nothing from, and what it does instead.
const std::map<std::string_view, std::string_view>& ignored_options() {
    static const std::string_view split_brain =
        "Duet never resolves a split brain by discarding one side's data: it refuses to connect, reports it, and "
        "the operator chooses";
    static const std::string_view tuning = "Duet sizes its buffers and link timeouts itself";
    static const std::string_view controller =
        "Duet resyncs at most at the resync rate and backs off for application I/O (there is no dynamic controller)";
    static const std::string_view flushes = "Duet always passes flushes and FUA writes to both disks";
    static const std::string_view startup =
        "Duet does not hold the boot waiting for the peer: the engine connects in the background, and the replica "
        "is promoted only with up-to-date data";
    static const std::string_view unused = "not used by Duet";
    static const std::map<std::string_view, std::string_view> m = {
        {"after-sb-0pri", split_brain},
        {"after-sb-1pri", split_brain},
        {"after-sb-2pri", split_brain},
        {"always-asbp", split_brain},
        {"rr-conflict", split_brain},
        {"discard-my-data", split_brain},
        {"allow-two-primaries", "Duet allows one Primary at a time, never two"},
        {"fencing", "Duet does not fence the peer: this line gives NO fencing"},
        {"max-buffers", tuning},
        {"max-epoch-size", tuning},
        {"sndbuf-size", tuning},
        {"rcvbuf-size", tuning},
        {"unplug-watermark", tuning},
        {"no-tcp-cork", tuning},
        {"tcp-cork", tuning},
        {"use-rle", tuning},
        {"timeout", tuning},
        {"connect-int", tuning},
        {"ping-int", tuning},
        {"ping-timeout", tuning},
        {"ko-count", tuning},
        {"max-bio-bvecs", tuning},
        {"on-congestion", "Duet never pulls ahead of the peer: with protocol A, writes wait when the link is full"},
        {"congestion-fill", "Duet never pulls ahead of the peer: with protocol A, writes wait when the link is full"},
        {"congestion-extents", "Duet never pulls ahead of the peer: with protocol A, writes wait when the link is full"},
        {"data-integrity-alg",
         "Duet does not checksum each block on the link; encrypt = true (duet.toml) protects the data with TLS"},
        {"csums-alg", "Duet resyncs the blocks its bitmap marks, without comparing checksums first"},
        {"al-extents", "Duet sizes its activity log itself"},
        {"al-updates", "Duet always keeps its activity log"},
        {"c-plan-ahead", controller},
        {"c-fill-target", controller},
        {"c-delay-target", controller},
        {"c-max-rate", controller},
        {"c-min-rate", controller},
        {"delay-probe-volume", controller},
        {"delay-probe-interval", controller},
        {"throttle-threshold", controller},
        {"hold-off-threshold", controller},
        {"resync-after", "Duet resyncs each replica independently"},
        {"after", "Duet resyncs each replica independently"},
        {"disk-barrier", flushes},
        {"disk-flushes", flushes},
        {"disk-drain", flushes},
        {"md-flushes", flushes},
        {"no-disk-barrier", flushes},
        {"no-disk-flushes", flushes},
        {"no-disk-drain", flushes},
        {"no-md-flushes", flushes},
        {"use-bmbv", flushes},
        {"on-io-error", "Duet has no on-io-error policies"},
        {"disk-timeout", "Duet has no disk timeout: a hung backing disk hangs its I/O"},
        {"size", "Duet replicates the whole backing disk (both nodes' disks must have the same size)"},
        {"read-balancing", "Duet reads from the local disk"},
        {"discard-zeroes-if-aligned", unused},
        {"rs-discard-granularity", unused},
        {"disable-write-same", unused},
        {"cpu-mask", unused},
        {"on-no-data-accessible", "Duet serves the device only on a Primary with up-to-date data"},
        {"wfc-timeout", startup},
        {"degr-wfc-timeout", startup},
        {"outdated-wfc-timeout", startup},
        {"wait-after-sb", startup},
        {"stacked-timeouts", startup},
        {"become-primary-on",
         "Duet promotes a replica through the resource chain: drbddisk::NAME (or replica::NAME) in haresources"},
        {"minor-count", unused},
        {"dialog-refresh", unused},
        {"disable-ip-verification", unused},
        {"udev-always-use-vnr", unused},
        {"cmd-timeout-short", unused},
        {"cmd-timeout-medium", unused},
        {"cmd-timeout-long", unused},
        {"node-id", "Duet's two nodes are the ones of ha.cf"},
    };
    return m;
}

// Handlers run scripts on DRBD events; Duet runs none.
std::string handler_advice(const std::string& name) {
    if (name == "fence-peer" || name == "unfence-peer" || name == "after-resync-target" || name == "before-resync-target")
        return "Duet runs no DRBD handler scripts and does not fence the peer";
    return "Duet runs no DRBD handler scripts: replication events appear in `hactl events` and the log, and a MailTo "
           "resource in the chain mails role changes";
}

// What DRBD 9 and stacked setups write, which Duet's two-node pairs cannot express.
const std::map<std::string_view, std::string_view>& unsupported_sections() {
    static const std::map<std::string_view, std::string_view> m = {
        {"floating", "Duet needs `on NODE` sections, named as the nodes of ha.cf"},
        {"stacked-on-top-of", "Duet does not stack replicas"},
        {"connection", "Duet replicates between the two `on` hosts of a resource (DRBD 8 style)"},
        {"connection-mesh", "Duet replicates between the two `on` hosts of a resource (DRBD 8 style)"},
        {"proxy", "Duet has no DRBD proxy"},
        {"_this_host", "Duet needs `on NODE` sections, named as the nodes of ha.cf"},
        {"_remote_host", "Duet needs `on NODE` sections, named as the nodes of ha.cf"},
    };
    return m;
}

template <typename T>
struct Field {
    std::optional<T> value;
    Origin at;
};

// What `common` and a resource may both set (the resource wins).
struct Shared {
    Field<char> protocol;
    Field<std::string> secret;
    Field<uint64_t> rate;
    Field<std::string> verify;
};

// device, disk and meta-disk: in a resource, a volume, or an `on` section (the last wins).
struct Storage {
    Field<std::string> device, disk, meta_disk;
};

struct Host {
    std::string name;  // lower case
    Origin origin;
    Field<Endpoint> address;
    bool address_written = false;
    Storage storage;
};

struct Resource {
    std::string name;
    Origin origin;
    Shared shared;
    Storage storage;
    std::vector<Host> hosts;
    Field<std::string> volume;  // the one volume number seen, if any
};

class Interpreter {
public:
    Interpreter(Config& cfg, Diagnostics& diag, const IncludeReader& include)
        : cfg_(cfg), diag_(diag), include_(include) {}

    void file(std::string_view text, const std::string& path, int include_depth) {
        for (const auto& l : split_lines(text)) {
            if (auto bad = bad_text(l.text)) {
                diag_.error(Origin{path, l.number, ""}, "", "the line contains " + *bad + "; drbd.conf is a text file");
                return;
            }
        }
        std::vector<Stmt> stmts;
        if (!TreeParser(text, path, diag_).parse(stmts)) return;
        top(stmts, path, include_depth);
    }

    // The replicas, once every file is read.
    void finish() {
        stmt_ = nullptr;
        for (const Resource& res : resources_) replica(res);
    }

private:
    // The statement being interpreted, for the hint below. Every handler starts with at().
    Origin at(const std::string& file, const Stmt& st) {
        stmt_ = &st;
        return Origin{file, st.line, st.keyword()};
    }

    // A statement whose values run over several lines has probably lost its ';'.
    std::string hint() const {
        if (stmt_ == nullptr || stmt_->block || stmt_->words.front().line == stmt_->words.back().line) return "";
        return " (is a ';' missing at the end of line " + std::to_string(stmt_->words.front().line) + "?)";
    }

    void error(const Origin& o, const std::string& msg) { diag_.error(o, o.key, msg + hint()); }
    void warn(const Origin& o, const std::string& msg) { diag_.warn(o, o.key, msg); }

    // The statement must be `keyword VALUE...;` with `n` values (or a block when `block`).
    bool shape(const Stmt& st, const Origin& o, size_t min, size_t max, bool block, const std::string& form) {
        if (st.block != block) {
            error(o, block ? "expected a section `" + form + " { ... }`" : "expected `" + form + ";`, not a section");
            return false;
        }
        if (st.nvalues() < min || st.nvalues() > max) {
            error(o, "expected `" + form + (block ? " { ... }" : ";") + "`, got " + std::to_string(st.nvalues()) + " value" +
                         (st.nvalues() == 1 ? "" : "s"));
            return false;
        }
        if (st.words[0].kind == Token::String) {
            error(o, "expected a keyword, got a quoted string");
            return false;
        }
        return true;
    }

    template <typename T>
    void set(Field<T>& f, T value, const Origin& o) {
        if (f.at.set())
            warn(o, "given again (also at " + f.at.str() + "); this later value is used");
        f.value = std::move(value);
        f.at = o;
    }

    void unknown(const Origin& o, const std::string& where, const std::vector<std::string_view>& known) {
        std::string msg = "unknown " + where + " " + quote(o.key);
        // suggest() compares words of letters, digits and '_': DRBD's '-' are spelled '_' for it.
        auto underscored = [](std::string_view w) {
            std::string u(w);
            for (char& c : u)
                if (c == '-') c = '_';
            return u;
        };
        std::vector<std::string> names;
        for (auto k : known) names.push_back(underscored(k));
        std::vector<std::string_view> views(names.begin(), names.end());
        std::string close = suggest(underscored(o.key), views);
        for (size_t i = 0; i < names.size() && !close.empty(); ++i)
            if (names[i] == close) {
                msg += " (did you mean '" + std::string(known[i]) + "'?)";
                break;
            }
        error(o, msg);
    }

    void top(const std::vector<Stmt>& stmts, const std::string& file, int include_depth) {
        for (const Stmt& st : stmts) {
            Origin o = at(file, st);
            const std::string& kw = st.keyword();
            if (kw == "global") {
                if (shape(st, o, 0, 0, true, "global")) global(st.body, file);
            } else if (kw == "common") {
                if (!shape(st, o, 0, 0, true, "common")) continue;
                if (common_at_.set()) {
                    error(o, "a second common section (the first is at " + common_at_.str() + "); merge them");
                    continue;
                }
                common_at_ = o;
                section(st.body, file, common_, nullptr);
            } else if (kw == "resource") {
                if (!shape(st, o, 1, 1, true, "resource NAME")) continue;
                resource(st, file, o);
            } else if (kw == "include") {
                if (!shape(st, o, 1, 1, false, "include \"PATTERN\"")) continue;
                include(st.value(0), file, o, include_depth);
            } else if (auto it = unsupported_sections().find(kw); it != unsupported_sections().end()) {
                error(o, "not supported by Duet: " + std::string(it->second));
            } else {
                unknown(o, "top-level keyword", {"global", "common", "resource", "include", "skip"});
            }
        }
    }

    void global(const std::vector<Stmt>& stmts, const std::string& file) {
        for (const Stmt& st : stmts) {
            Origin o = at(file, st);
            if (st.keyword() == "usage-count") continue;  // Duet reports no usage, whatever the answer
            if (st.block) {
                error(o, "unexpected section in global");
            } else if (auto it = ignored_options().find(st.keyword()); it != ignored_options().end()) {
                warn(o, "not supported by Duet, ignored: " + std::string(it->second));
            } else {
                unknown(o, "global option",
                        {"usage-count", "minor-count", "dialog-refresh", "disable-ip-verification", "udev-always-use-vnr"});
            }
        }
    }

    void include(const std::string& pattern, const std::string& file, const Origin& o, int depth) {
        if (!include_) {
            error(o, "includes are not followed here (only when the file is loaded from disk)");
            return;
        }
        if (depth >= kMaxIncludeDepth) {
            error(o, "includes nested more than " + std::to_string(kMaxIncludeDepth) + " deep: does a file include itself?");
            return;
        }
        if (pattern.empty()) {
            error(o, "expected a file name or pattern, such as include \"drbd.d/*.res\"");
            return;
        }
        std::string full = pattern;
        size_t slash = file.rfind('/');
        if (pattern[0] != '/' && slash != std::string::npos) full = file.substr(0, slash + 1) + pattern;
        for (auto& f : include_(full, o, diag_)) {
            cfg_.sources.push_back(f.path);
            this->file(f.text, f.path, depth + 1);
        }
    }

    // The body of `common` (res == nullptr) or of a resource.
    void section(const std::vector<Stmt>& stmts, const std::string& file, Shared& sh, Resource* res) {
        for (const Stmt& st : stmts) {
            Origin o = at(file, st);
            const std::string& kw = st.keyword();
            bool storage_kw = kw == "device" || kw == "meta-disk" || kw == "flexible-meta-disk" || (kw == "disk" && !st.block);
            if (kw == "protocol") {
                protocol(st, o, sh);
            } else if (kw == "net" || kw == "syncer" || kw == "startup" || kw == "handlers" || kw == "options" ||
                       (kw == "disk" && st.block)) {
                if (shape(st, o, 0, 0, true, kw)) options(kw, st.body, file, sh);
            } else if (storage_kw || kw == "on" || kw == "volume") {
                if (res == nullptr) {
                    error(o, kw + " belongs in a resource, not in common");
                } else if (storage_kw) {
                    storage(st, o, res->storage);
                } else if (kw == "on") {
                    if (shape(st, o, 1, 1, true, "on HOST")) host(st, file, o, *res);
                } else if (shape(st, o, 1, 1, true, "volume NUMBER")) {
                    volume(st, file, o, *res, res->storage);
                }
            } else if (auto it = unsupported_sections().find(kw); it != unsupported_sections().end()) {
                error(o, "not supported by Duet: " + std::string(it->second));
            } else if (auto ig = ignored_options().find(kw); ig != ignored_options().end() && !st.block) {
                warn(o, "not supported by Duet, ignored: " + std::string(ig->second));
            } else {
                unknown(o, res ? "keyword in a resource" : "keyword in common",
                        {"protocol", "net", "disk", "syncer", "startup", "handlers", "options", "device", "meta-disk",
                         "flexible-meta-disk", "on", "volume"});
            }
        }
    }

    void resource(const Stmt& st, const std::string& file, Origin o) {
        std::string name = st.value(0);
        o.key = "resource " + name;
        for (const Resource& r : resources_) {
            if (r.name == name) {
                error(o, "resource " + quote(name) + " is defined twice (also at " + r.origin.str() + ")");
                return;
            }
        }
        Resource res;
        res.name = name;
        res.origin = o;
        section(st.body, file, res.shared, &res);
        resources_.push_back(std::move(res));
    }

    void host(const Stmt& st, const std::string& file, Origin o, Resource& res) {
        Host h;
        h.name = lower(st.value(0));
        o.key = "on " + st.value(0);
        h.origin = o;
        if (!valid_node_name(st.value(0))) {
            error(o, "expected a host name as `uname -n` prints it (letters, digits, '.', '-', '_'), got " + quote(st.value(0)));
            return;
        }
        for (const Host& other : res.hosts) {
            if (other.name == h.name) {
                error(o, "host " + quote(h.name) + " appears twice in resource " + quote(res.name) + " (also at " +
                             other.origin.str() + ")");
                return;
            }
        }
        for (const Stmt& s : st.body) {
            Origin so = at(file, s);
            const std::string& kw = s.keyword();
            if (kw == "address") {
                h.address_written = true;
                address(s, so, h);
            } else if (kw == "device" || kw == "disk" || kw == "meta-disk" || kw == "flexible-meta-disk") {
                storage(s, so, h.storage);
            } else if (kw == "volume") {
                if (shape(s, so, 1, 1, true, "volume NUMBER")) volume(s, file, so, res, h.storage);
            } else if (kw == "node-id") {
                warn(so, "not supported by Duet, ignored: " + std::string(ignored_options().at("node-id")));
            } else {
                unknown(so, "keyword in an on section", {"address", "device", "disk", "meta-disk", "flexible-meta-disk", "volume"});
            }
        }
        res.hosts.push_back(std::move(h));
    }

    // `volume N { device ...; disk ...; meta-disk ...; disk { options } }`: Duet replicates one disk
    // per replica, so a resource may use one volume number (in its `on` sections and at its level).
    void volume(const Stmt& st, const std::string& file, const Origin& o, Resource& res, Storage& into) {
        const std::string& n = st.value(0);
        if (!parse_uint(n, 65535)) {
            error(o, "expected a volume number, got " + quote(n));
            return;
        }
        if (res.volume.value && *res.volume.value != n) {
            error(o, "a second volume (" + n + ", after volume " + *res.volume.value + " at " + res.volume.at.str() +
                         "): Duet replicates one disk per replica; give each volume a resource of its own");
            return;
        }
        res.volume.value = n;
        res.volume.at = o;
        for (const Stmt& s : st.body) {
            Origin so = at(file, s);
            const std::string& kw = s.keyword();
            if (kw == "disk" && s.block) options("disk", s.body, file, res.shared);
            else if (kw == "device" || kw == "disk" || kw == "meta-disk" || kw == "flexible-meta-disk") storage(s, so, into);
            else unknown(so, "keyword in a volume", {"device", "disk", "meta-disk", "flexible-meta-disk"});
        }
    }

    void protocol(const Stmt& st, const Origin& o, Shared& sh) {
        if (!shape(st, o, 1, 1, false, "protocol A|B|C")) return;
        std::string p = lower(st.value(0));
        if (p != "a" && p != "b" && p != "c") {
            error(o, "expected A, B or C, got " + quote(st.value(0)));
            return;
        }
        set(sh.protocol, static_cast<char>(p[0] - 'a' + 'A'), o);
    }

    void storage(const Stmt& st, const Origin& o, Storage& s) {
        const std::string& kw = st.keyword();
        if (st.block) {
            error(o, "expected `" + kw + " ...;`, not a section here");
            return;
        }
        if (kw == "device") {
            device(st, o, s);
        } else if (kw == "disk") {
            if (!shape(st, o, 1, 1, false, "disk /dev/..."))
                return;
            const std::string& d = st.value(0);
            if (d == "none")
                error(o, "disk none (a diskless node) is not supported: Duet needs a backing disk on both nodes");
            else if (!absolute_path(d))
                error(o, "expected the absolute path of the backing disk, got " + quote(d));
            else
                set(s.disk, d, o);
        } else {
            meta_disk(st, o, s);
        }
    }

    // device /dev/drbd0; device /dev/drbd0 minor 0; device minor 0; device drbd0;
    void device(const Stmt& st, const Origin& o, Storage& s) {
        const std::string form = "device /dev/drbdN;`, `device /dev/drbdN minor N;` or `device minor N";
        auto minor_path = [](const std::string& n) -> std::optional<std::string> {
            if (!parse_uint(n, 1u << 20)) return std::nullopt;
            return "/dev/drbd" + n;
        };
        std::optional<std::string> path;
        if (st.nvalues() == 2 && st.value(0) == "minor") {
            path = minor_path(st.value(1));
        } else if (st.nvalues() == 1 || (st.nvalues() == 3 && st.value(1) == "minor" && minor_path(st.value(2)))) {
            const std::string& p = st.value(0);
            if (absolute_path(p)) path = p;
            else if (p.rfind("drbd", 0) == 0 && minor_path(p.substr(4))) path = "/dev/" + p;
        }
        if (!path) {
            std::string got;
            for (size_t i = 0; i < st.nvalues(); ++i) got += (i ? " " : "") + st.value(i);
            error(o, "expected `" + form + "`, got " + quote(got));
            return;
        }
        set(s.device, *path, o);
    }

    // meta-disk internal; meta-disk /dev/sdc1; meta-disk /dev/sdc1 [0]; meta-disk /dev/sdc1[0];
    void meta_disk(const Stmt& st, const Origin& o, Storage& s) {
        const std::string& kw = st.keyword();
        if (st.nvalues() < 1 || st.nvalues() > 2) {
            error(o, "expected `" + kw + " internal;` or `" + kw + " /dev/...;`");
            return;
        }
        std::string v = st.value(0);
        bool indexed = st.nvalues() == 2 || (v.size() > 1 && v.back() == ']' && v.find('[') != std::string::npos);
        if (indexed) {
            error(o, "indexed external metadata (DRBD's 128 MiB slots) is not supported: use `meta-disk internal;` or a "
                     "metadata device of its own (`meta-disk /dev/...;`)");
            return;
        }
        if (v != "internal" && !absolute_path(v)) {
            error(o, "expected internal or the absolute path of a metadata device, got " + quote(v));
            return;
        }
        set(s.meta_disk, v, o);
    }

    // address [ipv4|ipv6] ADDRESS:PORT;
    void address(const Stmt& st, const Origin& o, Host& h) {
        if (!shape(st, o, 1, 2, false, "address [ipv4|ipv6] ADDRESS:PORT")) return;
        if (st.nvalues() == 2) {
            const std::string& af = st.value(0);
            if (af == "ssocks" || af == "sdp" || af == "sci") {
                error(o, "address family " + af + " is not supported: Duet replicates over TCP (ipv4 or ipv6)");
                return;
            }
            if (af != "ipv4" && af != "ipv6") {
                error(o, "expected an address family ipv4 or ipv6 before the address, got " + quote(af));
                return;
            }
        }
        const std::string& text = st.value(st.nvalues() - 1);
        std::string problem;
        auto e = parse_endpoint(text, problem);
        if (!e) {
            error(o, "expected ADDRESS:PORT such as 198.51.100.1:7788 or [2001:db8::1]:7788, got " + quote(text) + ": " + problem);
            return;
        }
        set(h.address, *e, o);
    }

    // net, disk, syncer, startup, options and handlers sections.
    void options(const std::string& section, const std::vector<Stmt>& stmts, const std::string& file, Shared& sh) {
        for (const Stmt& st : stmts) {
            Origin o = at(file, st);
            const std::string& kw = st.keyword();
            if (st.block) {
                error(o, "unexpected section " + quote(kw) + " in " + section);
                continue;
            }
            if (section == "handlers") {
                warn(o, "handler not run: " + handler_advice(kw));
                continue;
            }
            if (kw == "protocol") {
                protocol(st, o, sh);
            } else if (kw == "shared-secret") {
                if (!shape(st, o, 1, 1, false, "shared-secret \"SECRET\"")) continue;
                if (st.value(0).empty()) error(o, "the shared secret is empty");
                else set(sh.secret, st.value(0), o);
            } else if (kw == "cram-hmac-alg") {
                // Informative: Duet's link always authenticates with HMAC-SHA256 under the secret.
                shape(st, o, 1, 1, false, "cram-hmac-alg ALGORITHM");
            } else if (kw == "verify-alg") {
                if (!shape(st, o, 1, 1, false, "verify-alg ALGORITHM")) continue;
                std::string alg = lower(st.value(0));
                bool known = false;
                for (const char* a : kVerifyAlgorithms) known = known || alg == a;
                if (known) {
                    set(sh.verify, alg, o);
                } else {
                    std::string list;
                    for (const char* a : kVerifyAlgorithms) list += std::string(list.empty() ? "" : ", ") + a;
                    warn(o, quote(st.value(0)) + " is not supported by Duet, ignored: online verify uses one of " + list);
                }
            } else if (kw == "rate" || kw == "resync-rate") {
                if (!shape(st, o, 1, 1, false, kw + " RATE")) continue;
                if (auto r = parse_rate(st.value(0), 1024)) set(sh.rate, *r, o);
                else
                    error(o, "expected a rate in bytes per second such as 100M (K, M, G: powers of 1024; no suffix: KiB/s), "
                             "at most 1 TiB/s, got " + quote(st.value(0)));
            } else if (auto it = ignored_options().find(kw); it != ignored_options().end()) {
                warn(o, "not supported by Duet, ignored: " + std::string(it->second));
            } else {
                std::vector<std::string_view> known = {"protocol", "shared-secret", "cram-hmac-alg", "verify-alg", "rate",
                                                       "resync-rate"};
                for (const auto& [name, advice] : ignored_options()) known.push_back(name);
                unknown(o, "option in " + section + ":", known);
            }
        }
    }

    // Resource setting, else common's.
    template <typename T>
    const Field<T>& pick(const Field<T>& mine, const Field<T>& common) const {
        return mine.at.set() ? mine : common;
    }

    void replica(const Resource& res) {
        Replica r;
        r.name = res.name;
        r.origin = res.origin;
        if (const auto& p = pick(res.shared.protocol, common_.protocol); p.value) {
            r.protocol = *p.value;
            r.key_origins["protocol"] = p.at;
        }
        if (const auto& s = pick(res.shared.secret, common_.secret); s.value) {
            r.secret = *s.value;
            r.key_origins["secret"] = s.at;
        }
        if (const auto& rate = pick(res.shared.rate, common_.rate); rate.value) {
            r.resync_rate = *rate.value;
            r.key_origins["resync_rate"] = rate.at;
        }
        if (const auto& v = pick(res.shared.verify, common_.verify); v.value) {
            r.verify_alg = *v.value;
            r.key_origins["verify_alg"] = v.at;
        }
        if (res.storage.meta_disk.value) {
            r.meta_disk = *res.storage.meta_disk.value;
            r.key_origins["meta_disk"] = res.storage.meta_disk.at;
        }
        // One device path on both nodes: the Primary serves the replica there. An `on` section's
        // device overrides the resource's.
        const Field<std::string>* device = nullptr;
        for (const Host& h : res.hosts) {
            const Field<std::string>& d = h.storage.device.value ? h.storage.device : res.storage.device;
            if (!d.value) {
                if (res.hosts.size() > 1)
                    error(h.origin, "no device for " + h.name + ": expected `device /dev/drbdN;` in this on section or in resource " +
                                        quote(res.name));
                continue;
            }
            if (device && *device->value != *d.value)
                error(d.at, "Duet serves a replica at the same device path on both nodes: " + quote(*d.value) + " here, " +
                                quote(*device->value) + " at " + device->at.str());
            if (!device) device = &d;
        }
        if (!device && res.storage.device.value) device = &res.storage.device;
        if (device) {
            r.device = *device->value;
            r.key_origins["device"] = device->at;
        } else if (res.hosts.size() <= 1) {
            error(res.origin, "no device: expected `device /dev/drbdN;` (or `device minor N;`) in the resource or its on sections");
        }
        for (const Host& h : res.hosts) {
            ReplicaNode n;
            n.node = h.name;
            n.origin = h.origin;
            if (h.address.value) {
                n.address = h.address.value->address;
                n.port = h.address.value->port;
                n.key_origins["address"] = h.address.at;
            } else if (h.address_written) {
                n.key_origins["address"] = h.origin;  // refused above: not "missing" too
            }
            const Field<std::string>& disk = h.storage.disk.value ? h.storage.disk : res.storage.disk;
            if (disk.value) {  // else finalize() says it is missing
                n.disk = *disk.value;
                n.key_origins["disk"] = disk.at;
            }
            if (h.storage.meta_disk.value) {
                n.meta_disk = *h.storage.meta_disk.value;
                n.key_origins["meta_disk"] = h.storage.meta_disk.at;
            }
            r.nodes.push_back(std::move(n));
        }
        cfg_.replicas.push_back(std::move(r));
    }

    Config& cfg_;
    Diagnostics& diag_;
    const IncludeReader& include_;
    const Stmt* stmt_ = nullptr;
    Shared common_;
    Origin common_at_;
    std::vector<Resource> resources_;
};

}  // namespace

void parse_drbdconf(std::string_view text, const std::string& file, Config& cfg, Diagnostics& diag,
                    const IncludeReader& include) {
    cfg.sources.push_back(file);
    Interpreter in(cfg, diag, include);
    in.file(text, file, 0);
    in.finish();
}

}  // namespace duet::config
