#include "proto/cluster_state.hpp"

#include <stdexcept>

namespace duet::proto {
namespace {

constexpr uint8_t kVersion = 1;

class Writer {
public:
    void u8(uint8_t v) { out.push_back(v); }
    void u16(uint16_t v) {
        u8(static_cast<uint8_t>(v >> 8));
        u8(static_cast<uint8_t>(v));
    }
    void u32(uint32_t v) {
        u16(static_cast<uint16_t>(v >> 16));
        u16(static_cast<uint16_t>(v));
    }
    void name(const std::string& s) {
        if (s.empty() || s.size() > kGroupNameMax) throw std::invalid_argument("group name of bad length: " + s);
        u8(static_cast<uint8_t>(s.size()));
        out.insert(out.end(), s.begin(), s.end());
    }
    std::vector<uint8_t> out;
};

class Reader {
public:
    explicit Reader(std::span<const uint8_t> b) : b_(b) {}
    bool u8(uint8_t& v) {
        if (pos_ + 1 > b_.size()) return false;
        v = b_[pos_++];
        return true;
    }
    bool u16(uint16_t& v) {
        uint8_t a, b;
        if (!u8(a) || !u8(b)) return false;
        v = static_cast<uint16_t>(a << 8 | b);
        return true;
    }
    bool u32(uint32_t& v) {
        uint16_t a, b;
        if (!u16(a) || !u16(b)) return false;
        v = static_cast<uint32_t>(a) << 16 | b;
        return true;
    }
    bool name(std::string& s) {
        uint8_t n;
        if (!u8(n) || n == 0 || n > kGroupNameMax || pos_ + n > b_.size()) return false;
        s.assign(reinterpret_cast<const char*>(b_.data() + pos_), n);
        pos_ += n;
        for (unsigned char c : s)
            if (c < 0x21 || c > 0x7e) return false;
        return true;
    }
    bool done() const { return pos_ == b_.size(); }
private:
    std::span<const uint8_t> b_;
    size_t pos_ = 0;
};

}  // namespace

const char* to_string(GroupState s) {
    switch (s) {
        case GroupState::Stopped: return "stopped";
        case GroupState::Probing: return "probing";
        case GroupState::Claiming: return "claiming";
        case GroupState::Starting: return "starting";
        case GroupState::Running: return "running";
        case GroupState::Stopping: return "stopping";
        case GroupState::Failed: return "failed";
        case GroupState::Blocked: return "blocked";
    }
    return "?";
}

bool holds(GroupState s) {
    return s == GroupState::Probing || s == GroupState::Starting || s == GroupState::Running ||
           s == GroupState::Stopping || s == GroupState::Blocked;
}

// Layout: version u8 | flags u8 (bit 0 maintenance) | acked_request u32 | request seq u32 |
// request kind u8 | request group count u8 | names | group count u8 | per group: name, state u8,
// flags u8 (bit 0 standby), claim u32, ack u32, failures u16. Names: u8 length (1..128) + printable
// ASCII without spaces.
std::vector<uint8_t> encode(const ClusterState& s) {
    if (s.groups.size() > kMaxGroups || s.request.groups.size() > kMaxGroups)
        throw std::invalid_argument("too many groups in cluster state");
    Writer w;
    w.u8(kVersion);
    w.u8(s.maintenance ? 1 : 0);
    w.u32(s.acked_request);
    w.u32(s.request.seq);
    w.u8(static_cast<uint8_t>(s.request.kind));
    w.u8(static_cast<uint8_t>(s.request.groups.size()));
    for (const auto& g : s.request.groups) w.name(g);
    w.u8(static_cast<uint8_t>(s.groups.size()));
    for (const auto& g : s.groups) {
        w.name(g.name);
        w.u8(static_cast<uint8_t>(g.state));
        w.u8(g.standby ? 1 : 0);
        w.u32(g.claim);
        w.u32(g.ack);
        w.u16(g.failures);
    }
    return std::move(w.out);
}

std::optional<ClusterState> decode_cluster_state(std::span<const uint8_t> bytes, std::string& error) {
    Reader r(bytes);
    ClusterState s;
    uint8_t version, flags, kind, n;
    if (!r.u8(version)) return error = "empty", std::nullopt;
    if (version != kVersion) return error = "cluster state version " + std::to_string(version) + " unknown", std::nullopt;
    if (!r.u8(flags) || (flags & ~1u)) return error = "bad flags", std::nullopt;
    s.maintenance = flags & 1;
    if (!r.u32(s.acked_request) || !r.u32(s.request.seq) || !r.u8(kind)) return error = "truncated", std::nullopt;
    if (kind > static_cast<uint8_t>(RequestKind::Unstandby)) return error = "bad request kind", std::nullopt;
    s.request.kind = static_cast<RequestKind>(kind);
    if (!r.u8(n) || n > kMaxGroups) return error = "bad request group count", std::nullopt;
    for (uint8_t i = 0; i < n; ++i) {
        std::string name;
        if (!r.name(name)) return error = "bad request group name", std::nullopt;
        s.request.groups.push_back(std::move(name));
    }
    if (!r.u8(n) || n > kMaxGroups) return error = "bad group count", std::nullopt;
    for (uint8_t i = 0; i < n; ++i) {
        GroupReport g;
        uint8_t state, gflags;
        if (!r.name(g.name)) return error = "bad group name", std::nullopt;
        if (!r.u8(state) || state > static_cast<uint8_t>(GroupState::Blocked)) return error = "bad group state", std::nullopt;
        if (!r.u8(gflags) || (gflags & ~1u)) return error = "bad group flags", std::nullopt;
        if (!r.u32(g.claim) || !r.u32(g.ack) || !r.u16(g.failures)) return error = "truncated", std::nullopt;
        g.state = static_cast<GroupState>(state);
        g.standby = gflags & 1;
        s.groups.push_back(std::move(g));
    }
    if (!r.done()) return error = "trailing bytes", std::nullopt;
    return s;
}

}  // namespace duet::proto
