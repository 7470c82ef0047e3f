// On-disk metadata of a replica: where it lives (Layout), the superblock (generation identifiers,
// disk state, flags) and the helpers the bitmap and activity log share for their own on-disk
// blocks. Format: docs/replication.md, "On-disk metadata".
//
// Every on-disk integer is little-endian. Every metadata I/O uses 4 KiB-aligned buffers, offsets
// and lengths, so the descriptors may be opened with O_DIRECT.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>

#include "proto/replication.hpp"

namespace duet::replication {

inline constexpr uint32_t kMdBlock = 4096;                      // unit of every metadata write
inline constexpr uint32_t kDefaultBlockSize = 4096;             // data bytes per bitmap bit
inline constexpr uint32_t kAlExtentSize = 4u << 20;             // bytes per activity-log extent
inline constexpr uint32_t kMaxAlSlots = (kMdBlock - 28) / 4;    // 1017: what one transaction block lists
inline constexpr uint32_t kDefaultAlSlots = 1000;               // ~3.9 GiB of "hot" data
inline constexpr uint32_t kAlRingBlocks = 8;                    // transactions kept on disk (ring)
inline constexpr uint64_t kSuperblockArea = 2 * kMdBlock;       // two copies of the superblock
inline constexpr uint64_t kMinDataSize = 1u << 20;              // smaller replicas are refused
inline constexpr uint32_t kMdVersion = 1;

// Where data and metadata live. Offsets of the metadata parts are in the address space of the
// metadata descriptor: the backing device itself for internal metadata, the metadata device for
// external metadata.
//
//   internal: backing = [ data | bitmap | activity log | superblock x2 ]   (superblock at the end)
//   external: backing = [ data ],  md device = [ superblock x2 | activity log | bitmap ]
//
// The superblock sits at a place that depends only on the device sizes, so it can be found before
// the parameters stored in it (block size, AL slots) are known.
struct Layout {
    uint64_t backing_size = 0;   // bytes of the backing device
    uint64_t data_size = 0;      // bytes replicated (the device the user sees), 4 KiB aligned
    uint64_t md_offset = 0;      // first byte of the whole metadata area
    uint64_t md_size = 0;        // bytes of the whole metadata area
    uint64_t sb_offset = 0;      // the two superblock copies (kSuperblockArea bytes)
    uint64_t al_offset = 0;      // activity-log ring (kAlRingBlocks transaction blocks)
    uint64_t al_size = 0;
    uint64_t bitmap_offset = 0;  // bitmap words, 4 KiB pages
    uint64_t bitmap_size = 0;
    uint32_t block_size = kDefaultBlockSize;  // data bytes per bitmap bit
    uint32_t al_extent_size = kAlExtentSize;
    uint32_t al_slots = kDefaultAlSlots;
    bool internal = true;

    uint64_t blocks() const { return (data_size + block_size - 1) / block_size; }
    uint64_t extents() const { return (data_size + al_extent_size - 1) / al_extent_size; }
    bool operator==(const Layout&) const = default;
};

// Computes where everything goes. `md_device_size` is used only for external metadata. Throws
// std::invalid_argument for bad parameters and for devices too small, saying what is needed.
Layout compute_layout(uint64_t backing_size, bool internal, uint64_t md_device_size = 0,
                      uint32_t block_size = kDefaultBlockSize, uint32_t al_slots = kDefaultAlSlots);

// Superblock flags.
inline constexpr uint32_t kMdClean = 1u << 0;    // the engine stopped cleanly: activity log is empty
inline constexpr uint32_t kMdPrimary = 1u << 1;  // Primary when the superblock was last written
inline constexpr uint32_t kMdKnownFlags = kMdClean | kMdPrimary;

struct Superblock {
    uint32_t version = kMdVersion;
    uint64_t data_size = 0;
    uint32_t block_size = kDefaultBlockSize;
    uint32_t al_extent_size = kAlExtentSize;
    uint32_t al_slots = kDefaultAlSlots;
    proto::repl::GenIds gen;
    proto::repl::Disk disk = proto::repl::Disk::Inconsistent;
    uint32_t flags = 0;
    uint64_t al_seq = 0;       // newest activity-log transaction the engine knows was written
    std::string replica;       // replica name, 1..64 printable ASCII characters
    bool operator==(const Superblock&) const = default;

    // Was Primary when it stopped, and did not stop cleanly: its activity-log extents may differ
    // from the peer's.
    bool crashed_primary() const { return (flags & kMdPrimary) != 0 && (flags & kMdClean) == 0; }
};

// Why metadata could not be used. what() says it in words.
class MetadataError : public std::runtime_error {
public:
    enum class Kind { NoMagic, Checksum, NewerVersion, Malformed, LayoutMismatch };
    MetadataError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
    Kind kind() const { return kind_; }

private:
    Kind kind_;
};

// One superblock copy, exactly kMdBlock bytes: its fields, the write sequence `seq` (which of the
// two copies is newer) and a CRC32C over everything before the last 4 bytes.
std::array<uint8_t, kMdBlock> encode_superblock(const Superblock& sb, uint64_t seq);
// Checks, in order: magic, checksum, version, fields. Throws MetadataError. Sets `seq`.
Superblock decode_superblock(std::span<const uint8_t, kMdBlock> block, uint64_t& seq);

// Reads both copies and returns the newest valid one. A copy with a bad checksum (a torn or
// damaged write) is skipped; a copy that is intact but unusable (newer version, other layout)
// makes the whole read fail, so an old copy never silently replaces newer metadata. Checks the
// superblock against `layout` (data size, block size, AL geometry). Throws MetadataError, or
// std::system_error on I/O errors.
Superblock read_superblock(int fd, const Layout& layout);

// Writes `sb` over the older (or invalid) copy with the next sequence number, then fdatasync.
// The other copy still holds the previous version if this write is torn.
void write_superblock(int fd, const Layout& layout, const Superblock& sb);

// Layout of existing metadata: finds the superblock from the device sizes alone and recomputes
// the layout with the block size and AL slots it was created with.
Layout layout_of_existing(int fd, uint64_t backing_size, bool internal, uint64_t md_device_size = 0);

// Fresh metadata: zeroed bitmap and activity log, both superblock copies with generation
// kJustCreated (genid.hpp), disk Inconsistent, flags kMdClean. Ends with fdatasync.
void create_md(int fd, const Layout& layout, const std::string& replica);

// For internal metadata: a filesystem on the backing device that is larger than the space left for
// data (ext2/3/4 or XFS) would lose its end. Returns the message to show (naming `device`), or
// nullopt when there is none or it fits.
std::optional<std::string> filesystem_in_the_way(int fd, uint64_t data_size, const std::string& device);

// ---- shared by the metadata parts (bitmap, activity log) -----------------------------------

// CRC32C (Castagnoli) of `bytes`, as used by every on-disk metadata block.
uint32_t crc32c(std::span<const uint8_t> bytes);

// A zeroed, kMdBlock-aligned buffer (usable with O_DIRECT).
class AlignedBuffer {
public:
    explicit AlignedBuffer(size_t size);
    uint8_t* data() { return data_.get(); }
    const uint8_t* data() const { return data_.get(); }
    size_t size() const { return size_; }
    std::span<uint8_t> span() { return {data_.get(), size_}; }

private:
    struct Free {
        void operator()(uint8_t* p) const;
    };
    std::unique_ptr<uint8_t, Free> data_;
    size_t size_;
};

// Whole-buffer positional I/O: retries on EINTR and short transfers; throws std::system_error
// naming `what` and the offset. Reading past the end of the file is an error.
void pread_all(int fd, void* buf, size_t len, uint64_t offset, const char* what);
void pwrite_all(int fd, const void* buf, size_t len, uint64_t offset, const char* what);
void datasync(int fd, const char* what);

}  // namespace duet::replication
