#include "daemon/state/generation.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "daemon/util/log.hpp"

namespace duet::state {
namespace {

std::runtime_error sys_error(const std::string& what, const std::string& path) {
    return std::runtime_error(what + " " + path + ": " + std::strerror(errno));
}

void mkdirs(const std::string& dir) {
    std::string partial;
    for (size_t i = 0; i <= dir.size(); ++i) {
        if (i == dir.size() || (dir[i] == '/' && i > 0)) {
            partial = dir.substr(0, i);
            if (::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) throw sys_error("cannot create", partial);
        }
    }
}

}  // namespace

uint64_t next_generation(const std::string& state_dir, uint64_t now_unix_seconds) {
    mkdirs(state_dir);
    const std::string path = state_dir + "/generation";
    uint64_t previous = 0;
    {
        std::ifstream in(path);
        if (in) {
            std::string text;
            std::getline(in, text);
            try {
                size_t used = 0;
                previous = std::stoull(text, &used);
                if (used != text.size()) throw std::invalid_argument("trailing text");
            } catch (const std::exception&) {
                log::warning(path + " is unreadable ('" + text.substr(0, 40) +
                             "'); starting from the current time, which is always newer");
                previous = 0;
            }
        }
    }
    uint64_t next = previous + 1 > now_unix_seconds ? previous + 1 : now_unix_seconds;
    const std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw sys_error("cannot write", tmp);
    std::string text = std::to_string(next) + "\n";
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
    int saved = errno;
    ::close(fd);
    errno = saved;
    if (!ok) throw sys_error("cannot write", tmp);
    if (::rename(tmp.c_str(), path.c_str()) != 0) throw sys_error("cannot replace", path);
    int dfd = ::open(state_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
    return next;
}

}  // namespace duet::state
