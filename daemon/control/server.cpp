#include "daemon/control/server.hpp"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "daemon/util/log.hpp"
#include "proto/control.hpp"

namespace duet::control {
namespace asio = boost::asio;
using stream = asio::local::stream_protocol;
namespace pc = proto::control;

namespace {

constexpr size_t kMaxQueuedBytes = 4 << 20;  // an events client that stops reading is dropped past this

// Supplementary groups of a process, from /proc (SO_PEERCRED only gives the primary gid).
std::vector<long> groups_of(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    std::vector<long> out;
    while (std::getline(f, line)) {
        if (line.rfind("Groups:", 0) != 0) continue;
        std::istringstream is(line.substr(7));
        long g;
        while (is >> g) out.push_back(g);
    }
    return out;
}

void make_parent_dir(const std::string& path) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos || slash == 0) return;
    std::string dir = path.substr(0, slash);
    std::string partial;
    std::istringstream is(dir);
    std::string part;
    while (std::getline(is, part, '/')) {
        if (part.empty()) continue;
        partial += "/" + part;
        if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST)
            throw std::runtime_error("cannot create " + partial + ": " + std::strerror(errno));
    }
}

}  // namespace

struct Server::Connection : std::enable_shared_from_this<Connection> {
    Connection(Server& s, stream::socket sock, std::string who) : server(s), socket(std::move(sock)), peer(std::move(who)) {}

    Server& server;
    stream::socket socket;
    std::string peer;
    pc::LineSplitter splitter;
    std::array<char, 4096> buf{};
    std::deque<std::string> out;
    size_t queued = 0;
    bool writing = false;
    bool subscribed = false;
    bool closed = false;
    bool closing = false;

    void start() { read(); }

    void read() {
        auto self = shared_from_this();
        socket.async_read_some(asio::buffer(buf), [self](const boost::system::error_code& ec, size_t n) {
            if (ec) return self->close();
            self->splitter.append(std::string_view(self->buf.data(), n));
            while (auto line = self->splitter.next()) self->on_line(*line);
            if (self->splitter.overflow()) {
                self->send(pc::encode(pc::Response{0, false, {}, "message too long"}));
                log::warning("control: " + self->peer + " sent a message over " + std::to_string(pc::kMaxLine) +
                             " bytes; closing");
                return self->close_after_write();
            }
            if (!self->closed && !self->closing) self->read();
        });
    }

    void on_line(const std::string& line) {
        if (closed || line.empty()) return;
        std::string err;
        auto req = pc::decode_request(line, err);
        if (!req) {
            send(pc::encode(pc::Response{0, false, {}, "bad request: " + err}));
            return;
        }
        uint64_t id = req->id;
        if (req->command == "events") {
            subscribed = true;
            send(pc::encode(pc::Response{id, true, Json{{"subscribed", true}}, ""}));
            return;
        }
        auto h = server.handlers_.find(req->command);
        if (h == server.handlers_.end()) {
            std::string known = "events";
            for (const auto& [name, _] : server.handlers_) known += ", " + name;
            send(pc::encode(pc::Response{id, false, {}, "unknown command '" + req->command + "' (known: " + known + ")"}));
            return;
        }
        std::weak_ptr<Connection> weak = shared_from_this();
        auto replied = std::make_shared<bool>(false);
        Reply reply = [weak, id, replied](bool ok, Json r) {
            if (*replied) return;
            *replied = true;
            auto self = weak.lock();
            if (!self || self->closed) return;
            pc::Response resp{id, ok, {}, ""};
            if (ok) resp.result = std::move(r);
            else resp.error = r.is_string() ? r.get<std::string>() : r.dump();
            self->send(pc::encode(resp));
        };
        try {
            h->second(req->args, reply);
        } catch (const std::exception& e) {
            log::error("control: command '" + req->command + "' failed: " + e.what());
            reply(false, std::string("internal error: ") + e.what());
        }
    }

    void send(std::string line) {
        if (closed) return;
        queued += line.size();
        if (queued > kMaxQueuedBytes) {
            log::warning("control: " + peer + " does not read its events; disconnecting it");
            return close();
        }
        out.push_back(std::move(line));
        if (!writing) write();
    }

    void write() {
        if (out.empty() || closed) {
            writing = false;
            if (closing) close();
            return;
        }
        writing = true;
        auto self = shared_from_this();
        asio::async_write(socket, asio::buffer(out.front()), [self](const boost::system::error_code& ec, size_t n) {
            if (ec) return self->close();
            self->queued -= n;
            self->out.pop_front();
            self->write();
        });
    }

    void close_after_write() {
        closing = true;  // stop reading; write() closes once the queued reply has gone out
        if (!writing) close();
    }

    void close() {
        if (closed) return;
        closed = true;
        boost::system::error_code ec;
        socket.close(ec);
        server.connections_.remove(shared_from_this());
    }
};

Server::Server(asio::io_context& io, std::string path, std::string group)
    : io_(io), path_(std::move(path)), group_(std::move(group)), acceptor_(io) {
    if (path_.size() >= sizeof(sockaddr_un::sun_path))
        throw std::runtime_error("control socket path too long: " + path_);
    make_parent_dir(path_);
    // Another daemon answering on this socket? Then refuse to start rather than steal it.
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) throw std::runtime_error(path_ + " exists and is not a socket; not touching it");
        stream::socket probe(io_);
        boost::system::error_code ec;
        probe.connect(stream::endpoint(path_), ec);
        if (!ec) throw std::runtime_error("another duetd is already running (it answers on " + path_ + ")");
        ::unlink(path_.c_str());
        log::info("removed stale control socket " + path_);
    }
    if (!group_.empty()) {
        if (struct group* g = ::getgrnam(group_.c_str())) gid_ = static_cast<long>(g->gr_gid);
        else log::warning("control group '" + group_ + "' does not exist: only root can use hactl (create it with `groupadd " +
                          group_ + "`)");
    }
    mode_t old = ::umask(0177);
    boost::system::error_code ec;
    acceptor_.open(stream(), ec);
    if (!ec) acceptor_.bind(stream::endpoint(path_), ec);
    ::umask(old);
    if (ec) throw std::runtime_error("cannot bind control socket " + path_ + ": " + ec.message());
    if (gid_ >= 0) {
        if (::chown(path_.c_str(), 0, static_cast<gid_t>(gid_)) != 0 || ::chmod(path_.c_str(), 0660) != 0)
            throw std::runtime_error("cannot set owner/mode of " + path_ + ": " + std::strerror(errno));
    }
    acceptor_.listen(64, ec);
    if (ec) throw std::runtime_error("cannot listen on " + path_ + ": " + ec.message());
    accept();
}

Server::~Server() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    for (auto& c : std::list<std::shared_ptr<Connection>>(connections_)) c->close();
    ::unlink(path_.c_str());
}

void Server::handle(std::string command, Handler h) { handlers_[std::move(command)] = std::move(h); }

size_t Server::subscribers() const {
    size_t n = 0;
    for (const auto& c : connections_) n += c->subscribed;
    return n;
}

void Server::publish(const Json& event) {
    std::string line = pc::encode(pc::Event{event});
    for (auto& c : std::list<std::shared_ptr<Connection>>(connections_))
        if (c->subscribed) c->send(line);
}

bool Server::allowed(int fd, std::string& who) const {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        who = "unknown peer";
        return false;
    }
    who = "pid " + std::to_string(cred.pid) + " uid " + std::to_string(cred.uid);
    if (cred.uid == 0) return true;
    if (gid_ < 0) return false;
    if (static_cast<long>(cred.gid) == gid_) return true;
    for (long g : groups_of(cred.pid))
        if (g == gid_) return true;
    return false;
}

void Server::accept() {
    acceptor_.async_accept([this](const boost::system::error_code& ec, stream::socket sock) {
        if (ec == asio::error::operation_aborted) return;
        if (!ec) {
            std::string who;
            if (!allowed(sock.native_handle(), who)) {
                log::warning("control: refused connection from " + who + " (not root, not in group '" + group_ + "')");
                std::string line = pc::encode(pc::Response{0, false, {}, "permission denied: root or group '" + group_ + "' only"});
                boost::system::error_code wec;
                asio::write(sock, asio::buffer(line), wec);
            } else {
                auto c = std::make_shared<Connection>(*this, std::move(sock), who);
                connections_.push_back(c);
                c->start();
            }
        } else {
            log::warning("control: accept failed: " + ec.message());
        }
        accept();
    });
}

}  // namespace duet::control
