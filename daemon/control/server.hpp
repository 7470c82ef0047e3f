// The control socket: a Unix stream socket speaking the messages of proto/control.hpp. Only root
// and members of the control group may connect (checked with SO_PEERCRED). Commands are handlers
// registered by name; `events` subscribes the connection to the event stream.
#pragma once

#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "daemon/util/asio.hpp"

namespace duet::control {

using Json = nlohmann::json;

class Server {
public:
    // A handler answers through `reply` exactly once, now or later (a command that waits for an
    // outcome keeps `reply` until it has one). reply(true, result) or reply(false, "error text").
    using Reply = std::function<void(bool ok, Json result_or_error)>;
    using Handler = std::function<void(const Json& args, Reply reply)>;

    // Binds the socket (refusing when another daemon answers on it, replacing a stale one) and sets
    // its owner root:group, mode 0660 (0600 when the group does not exist). Throws std::runtime_error
    // with a readable reason when it cannot.
    Server(boost::asio::io_context& io, std::string path, std::string group);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    void handle(std::string command, Handler h);
    // Sends an event to every connection that asked for `events`.
    void publish(const Json& event);
    size_t subscribers() const;

private:
    struct Connection;
    void accept();
    bool allowed(int fd, std::string& who) const;

    boost::asio::io_context& io_;
    std::string path_;
    std::string group_;
    long gid_ = -1;
    boost::asio::local::stream_protocol::acceptor acceptor_;
    std::map<std::string, Handler> handlers_;
    std::list<std::shared_ptr<Connection>> connections_;
};

}  // namespace duet::control
