// Control-socket messages: newline-delimited JSON over a Unix stream socket. No I/O here.
// Spec: docs/control.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace duet::proto::control {

using Json = nlohmann::json;

inline constexpr int kVersion = 1;
inline constexpr size_t kMaxLine = 1 << 20;  // a longer line is a protocol error

// Client -> daemon: {"version":1,"id":7,"command":"status","args":{}}
struct Request {
    uint64_t id = 0;
    std::string command;
    Json args = Json::object();
};

// Daemon -> client, one per request: {"version":1,"id":7,"ok":true,"result":{...}}
// or {"version":1,"id":7,"ok":false,"error":"..."}
struct Response {
    uint64_t id = 0;
    bool ok = false;
    Json result;        // when ok
    std::string error;  // when !ok
};

// Daemon -> subscribed client (after "events"): {"version":1,"event":{...}}
struct Event {
    Json event;
};

std::string encode(const Request& r);   // one line, ending in '\n'
std::string encode(const Response& r);
std::string encode(const Event& e);

// Each decoder takes one line (without or with its '\n') and returns nullopt with `error` set
// when the line is not valid JSON, not an object, has the wrong version, or lacks a field.
std::optional<Request> decode_request(std::string_view line, std::string& error);
std::optional<Response> decode_response(std::string_view line, std::string& error);
std::optional<Event> decode_event(std::string_view line, std::string& error);

// Splits a byte stream into lines. After overflow() (a line longer than kMaxLine) the stream is
// unusable and the connection must be closed.
class LineSplitter {
public:
    explicit LineSplitter(size_t max_line = kMaxLine) : max_(max_line) {}
    void append(std::string_view bytes);
    std::optional<std::string> next();  // a complete line without '\n'
    bool overflow() const { return overflow_; }
private:
    std::string buf_;
    size_t scan_ = 0;
    size_t max_;
    bool overflow_ = false;
};

}  // namespace duet::proto::control
