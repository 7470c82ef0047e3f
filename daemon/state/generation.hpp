// The boot generation: a number persisted in the state directory and increased on every start, so
// the peer can tell a restart from a replay. Never goes backwards, even if the file is lost: it is
// at least the current Unix time in seconds.
#pragma once

#include <cstdint>
#include <string>

namespace duet::state {

// Reads DIR/generation, writes the next generation durably (temp file, fsync, rename, fsync dir)
// and returns it. Throws std::runtime_error naming the file and the reason on failure.
uint64_t next_generation(const std::string& state_dir, uint64_t now_unix_seconds);

}  // namespace duet::state
