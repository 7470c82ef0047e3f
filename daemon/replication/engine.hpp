// The replication engine of one replica (docs/replication.md): the local backing disk with its
// metadata, the link to the peer's engine, the roles, the write path (protocols A, B, C), resync,
// and on the Primary the device (FUSE file + loop device + the configured device path).
//
// Threads: FUSE workers call the DeviceHandler methods; one connector thread keeps the link up;
// per connection one receiver thread, and on the sync source one resync thread; on the Secondary a
// small pool applies the peer's writes. Commands (promote, demote, connect, status) may come from
// any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/config/model.hpp"
#include "daemon/replication/fuse_device.hpp"
#include "daemon/replication/io_buffer.hpp"
#include "daemon/replication/metadata.hpp"
#include "daemon/util/log.hpp"
#include "proto/replication.hpp"

namespace duet::replication {

class Bitmap;
class ActivityLog;
class Link;

struct EngineConfig {
    std::string cluster;
    std::string node;       // this node
    std::string peer_node;
    config::Replica replica;
    std::string run_dir = "/run/duet/replica";  // FUSE mount points live under it
};

// Every setting the engine cannot work with is reported as this, with a readable reason.
class EngineError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Engine final : public DeviceHandler {
public:
    using Json = nlohmann::json;

    // Opens the backing disk and its metadata (which `hactl replica create-md` wrote). After an
    // unclean stop, the activity log's extents are marked out of sync.
    explicit Engine(EngineConfig cfg);
    ~Engine() override;
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    void start();  // starts connecting to the peer
    // Stops: refuses while the device is in use; else demotes, disconnects, records a clean stop.
    // Empty on success, else the reason.
    std::string stop();

    // Commands; each returns an empty string on success or the reason it was refused.
    // peer_dead: the cluster declared the peer dead; a link that does not answer within a second
    // is then dropped at once instead of at its own timeout.
    std::string promote(bool force, bool overwrite_peer, bool peer_dead = false);
    std::string demote();
    std::string connect();     // (re)start connecting after disconnect()
    std::string disconnect();  // drop the link and stay disconnected

    Json status() const;
    // Events (role, connection, disk, sync): the callback is called from engine threads.
    void on_event(std::function<void(const Json&)> cb);

    // DeviceHandler (the Primary's device)
    void read(uint64_t offset, size_t length, ReadCompletion c) override;
    void write(uint64_t offset, std::span<const uint8_t> data, Completion c) override;
    void flush(Completion c) override;
    void discard(uint64_t offset, uint64_t length, Completion c) override;

private:
    struct Session;
    struct PendingWrite;
    struct PendingFlush;
    class Applier;

    // connection management
    void connector_loop();
    void stop_link();
    int dial(std::string& err);
    void receiver_loop(const std::shared_ptr<Session>& s);
    void resync_loop(std::shared_ptr<Session> s);
    struct ResyncCursor;
    // One of the resync readers: true when the resync finished, false when the session ended.
    bool resync_reader(const std::shared_ptr<Session>& s, ResyncCursor& cur);
    void end_session(const std::shared_ptr<Session>& s, const std::string& reason);
    bool handle_frame(const std::shared_ptr<Session>& s, const proto::repl::Header& h, IoBuffer& payload);
    void send_state(const std::shared_ptr<Session>& s);
    proto::repl::State local_state_locked() const;

    // local disk
    void local_write(uint64_t offset, std::span<const uint8_t> data);  // throws std::system_error
    void local_read(uint64_t offset, size_t length, uint8_t* out);
    int local_discard(uint64_t offset, uint64_t length);
    void persist_locked();   // superblock
    void flush_bitmap();

    void complete_write(const std::shared_ptr<PendingWrite>& w);
    void emit(Json ev);
    std::vector<size_t> stripes_for(uint64_t offset, uint64_t length) const;

    EngineConfig cfg_;
    const config::ReplicaNode* me_ = nullptr;
    const config::ReplicaNode* peer_ = nullptr;
    int data_fd_ = -1;   // backing disk, O_DIRECT
    int meta_fd_ = -1;   // metadata (buffered, fdatasync'd)
    Layout layout_;
    std::unique_ptr<Bitmap> bitmap_;
    std::unique_ptr<ActivityLog> al_;

    mutable std::mutex mu_;               // state below
    Superblock sb_;
    bool crashed_primary_ = false;  // stopped uncleanly while Primary (told to the peer)
    proto::repl::Role role_ = proto::repl::Role::Secondary;
    std::unique_ptr<Device> device_;
    std::shared_ptr<Session> session_;
    bool want_connected_ = true;
    bool stopping_ = false;
    std::string last_error_;
    std::condition_variable cv_;

    // Write submission holds this shared; a link going down takes it exclusive, so no write is
    // half-submitted to a session that is being torn down.
    std::shared_mutex io_mu_;
    std::array<std::mutex, 1024> stripes_;   // per-MiB stripes: send order = local order (resync races)

    std::thread connector_;
    std::atomic<uint64_t> next_id_{1};

    // counters (bytes)
    std::atomic<uint64_t> sent_{0}, received_{0}, written_{0}, read_{0};
    std::atomic<uint64_t> app_inflight_{0};

    mutable std::mutex ev_mu_;           // also guards end_log_
    log::RateLimiter end_log_{60000};
    std::vector<std::function<void(const Json&)>> ev_subs_;
};

}  // namespace duet::replication
