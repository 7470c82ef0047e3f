#include "proto/control.hpp"

namespace duet::proto::control {
namespace {

std::string line_of(const Json& j) {
    // Invalid UTF-8 in a string is replaced, never thrown on: the daemon must not die on a log text.
    std::string s = j.dump(-1, ' ', false, Json::error_handler_t::replace);
    s.push_back('\n');
    return s;
}

std::optional<Json> parse_object(std::string_view line, std::string& error) {
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    if (line.size() > kMaxLine) {
        error = "message longer than " + std::to_string(kMaxLine) + " bytes";
        return std::nullopt;
    }
    Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
        error = "not valid JSON";
        return std::nullopt;
    }
    if (!j.is_object()) {
        error = "not a JSON object";
        return std::nullopt;
    }
    auto v = j.find("version");
    if (v == j.end() || !v->is_number_integer()) {
        error = "missing integer field 'version'";
        return std::nullopt;
    }
    if (v->get<int64_t>() != kVersion) {
        error = "unsupported protocol version " + v->dump() + " (this side speaks " + std::to_string(kVersion) + ")";
        return std::nullopt;
    }
    return j;
}

uint64_t id_of(const Json& j) {
    auto it = j.find("id");
    return (it != j.end() && it->is_number_unsigned()) ? it->get<uint64_t>() : 0;
}

}  // namespace

std::string encode(const Request& r) {
    Json j{{"version", kVersion}, {"id", r.id}, {"command", r.command}, {"args", r.args.is_null() ? Json::object() : r.args}};
    return line_of(j);
}

std::string encode(const Response& r) {
    Json j{{"version", kVersion}, {"id", r.id}, {"ok", r.ok}};
    if (r.ok) j["result"] = r.result;
    else j["error"] = r.error;
    return line_of(j);
}

std::string encode(const Event& e) { return line_of(Json{{"version", kVersion}, {"event", e.event}}); }

std::optional<Request> decode_request(std::string_view line, std::string& error) {
    auto j = parse_object(line, error);
    if (!j) return std::nullopt;
    auto c = j->find("command");
    if (c == j->end() || !c->is_string() || c->get_ref<const std::string&>().empty()) {
        error = "missing string field 'command'";
        return std::nullopt;
    }
    Request r;
    r.id = id_of(*j);
    r.command = c->get<std::string>();
    if (auto a = j->find("args"); a != j->end() && !a->is_null()) {
        if (!a->is_object()) {
            error = "field 'args' must be an object";
            return std::nullopt;
        }
        r.args = *a;
    }
    return r;
}

std::optional<Response> decode_response(std::string_view line, std::string& error) {
    auto j = parse_object(line, error);
    if (!j) return std::nullopt;
    auto ok = j->find("ok");
    if (ok == j->end() || !ok->is_boolean()) {
        error = "missing boolean field 'ok'";
        return std::nullopt;
    }
    Response r;
    r.id = id_of(*j);
    r.ok = ok->get<bool>();
    if (r.ok) {
        auto res = j->find("result");
        if (res == j->end()) {
            error = "missing field 'result'";
            return std::nullopt;
        }
        r.result = *res;
    } else {
        auto e = j->find("error");
        if (e == j->end() || !e->is_string()) {
            error = "missing string field 'error'";
            return std::nullopt;
        }
        r.error = e->get<std::string>();
    }
    return r;
}

std::optional<Event> decode_event(std::string_view line, std::string& error) {
    auto j = parse_object(line, error);
    if (!j) return std::nullopt;
    auto e = j->find("event");
    if (e == j->end() || !e->is_object()) {
        error = "missing object field 'event'";
        return std::nullopt;
    }
    return Event{*e};
}

void LineSplitter::append(std::string_view bytes) {
    if (overflow_) return;
    buf_.append(bytes);
}

std::optional<std::string> LineSplitter::next() {
    if (overflow_) return std::nullopt;
    size_t nl = buf_.find('\n', scan_);
    if (nl == std::string::npos) {
        scan_ = buf_.size();
        if (buf_.size() > max_) {
            overflow_ = true;
            buf_.clear();
        }
        return std::nullopt;
    }
    if (nl > max_) {
        overflow_ = true;
        buf_.clear();
        return std::nullopt;
    }
    std::string line = buf_.substr(0, nl);
    buf_.erase(0, nl + 1);
    scan_ = 0;
    return line;
}

}  // namespace duet::proto::control
