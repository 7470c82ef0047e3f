// Test helpers: temp dirs with agent scripts, process state from /proc, running one action.
#pragma once

#include "daemon/resources/runner.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace duet::resources::test {

// A temporary directory, removed with everything in it.
class TempDir {
public:
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "duet-resources-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }
private:
    std::string path_;
};

inline void write_file(const std::string& path, const std::string& text, mode_t mode = 0644) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    {
        std::ofstream f(path, std::ios::trunc);
        f << text;
        if (!f) throw std::runtime_error("cannot write " + path);
    }
    if (::chmod(path.c_str(), mode) != 0) throw std::runtime_error("cannot chmod " + path);
}

// A shell script: "#!/bin/sh\n" + body.
inline void write_script(const std::string& path, const std::string& body, mode_t mode = 0755) {
    write_file(path, "#!/bin/sh\n" + body, mode);
}

inline std::string read_file(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

inline std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

// Fields of /proc/PID/stat after the command name: [0] is the state, [1] ppid, [2] pgrp, [3] session.
inline std::optional<std::vector<std::string>> proc_stat(pid_t pid) {
    std::string s = read_file("/proc/" + std::to_string(pid) + "/stat");
    size_t rp = s.rfind(')');
    if (s.empty() || rp == std::string::npos) return std::nullopt;
    std::istringstream in(s.substr(rp + 1));
    std::vector<std::string> f;
    for (std::string w; in >> w;) f.push_back(w);
    if (f.size() < 4) return std::nullopt;
    return f;
}

// Alive: it exists and is neither a zombie nor dead (kill -0 succeeds on zombies).
inline bool alive(pid_t pid) {
    auto f = proc_stat(pid);
    return f && (*f)[0] != "Z" && (*f)[0] != "X";
}
inline bool exists(pid_t pid) { return proc_stat(pid).has_value(); }

template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= end) return pred();
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

// Waits for a file written by an agent to hold a pid.
inline pid_t read_pid(const std::string& path, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
    pid_t pid = 0;
    wait_until([&] {
        std::string s = read_file(path);
        pid = static_cast<pid_t>(std::atoi(s.c_str()));
        return pid > 0 && s.find('\n') != std::string::npos;
    }, limit);
    return pid;
}

// Kills a process the test started (by pid) and reaps it if it has become our child.
inline void kill_pid(pid_t pid) {
    if (pid <= 1 || !exists(pid)) return;
    ::kill(pid, SIGKILL);
    wait_until([&] {
        ::waitpid(pid, nullptr, WNOHANG);
        return !alive(pid);
    }, std::chrono::milliseconds(3000));
    ::waitpid(pid, nullptr, WNOHANG);
}

// Redirects this process's stderr (where duet::log writes) to a file while it lives.
class StderrCapture {
public:
    explicit StderrCapture(const std::string& path) : path_(path) {
        saved_ = ::dup(STDERR_FILENO);
        int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ::dup2(fd, STDERR_FILENO);
        ::close(fd);
    }
    ~StderrCapture() { restore(); }
    std::string text() const { return read_file(path_); }
    void restore() {
        if (saved_ < 0) return;
        ::dup2(saved_, STDERR_FILENO);
        ::close(saved_);
        saved_ = -1;
    }
private:
    std::string path_;
    int saved_ = -1;
};

inline size_t count(const std::string& hay, const std::string& needle) {
    size_t n = 0;
    for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + needle.size())) ++n;
    return n;
}

}  // namespace duet::resources::test
