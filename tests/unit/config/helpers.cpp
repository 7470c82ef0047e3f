#include "helpers.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace duet::config::test {

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

TempDir::TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "duet-config-test-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& content, unsigned mode, int uid) const {
    std::string p = file(name);
    {
        std::ofstream out(p, std::ios::binary | std::ios::trunc);
        out << content;
        if (!out) throw std::runtime_error("cannot write " + p);
    }
    if (::chmod(p.c_str(), mode) != 0) throw std::runtime_error("chmod failed on " + p);
    if (uid >= 0 && ::chown(p.c_str(), static_cast<uid_t>(uid), static_cast<gid_t>(-1)) != 0)
        throw std::runtime_error("chown failed on " + p);
    return p;
}

}  // namespace duet::config::test
