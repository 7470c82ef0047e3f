// On-disk metadata: layout, superblock codec and I/O, create-md, filesystem check.
// Format: docs/replication.md, "On-disk metadata".
#include "daemon/replication/metadata.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include "daemon/replication/genid.hpp"

namespace duet::replication {

namespace {

constexpr std::array<uint8_t, 8> kSbMagic{'D', 'U', 'E', 'T', 'M', 'E', 'T', 'A'};
constexpr size_t kCrcOffset = kMdBlock - 4;
constexpr size_t kNameOffset = 96;
constexpr size_t kNameMax = proto::repl::kNameMax;  // 64
constexpr uint64_t kMaxBlockSize = 1u << 20;

uint64_t align_down(uint64_t v, uint64_t a) { return v - v % a; }
uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
bool power_of_two(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

// Bytes of bitmap (whole 4 KiB pages) for `data_size` bytes of data.
uint64_t bitmap_bytes(uint64_t data_size, uint32_t block_size) {
    const uint64_t bits = (data_size + block_size - 1) / block_size;
    const uint64_t words = (bits + 63) / 64;
    return align_up(words * 8, kMdBlock);
}

// Empty when block size, extent size and slot count are usable, else what is wrong.
std::string geometry_problem(uint64_t block_size, uint64_t al_extent_size, uint64_t al_slots) {
    if (!power_of_two(block_size) || block_size < 512 || block_size > kMaxBlockSize)
        return "block size " + std::to_string(block_size) + " is not a power of two between 512 and " +
               std::to_string(kMaxBlockSize);
    if (!power_of_two(al_extent_size) || al_extent_size < block_size || al_extent_size > (1u << 30))
        return "activity-log extent size " + std::to_string(al_extent_size) +
               " is not a power of two between the block size and 1 GiB";
    if (al_slots < 1 || al_slots > kMaxAlSlots)
        return "activity-log slots " + std::to_string(al_slots) + " is not between 1 and " + std::to_string(kMaxAlSlots);
    return {};
}

bool valid_name(std::string_view name) {
    if (name.empty() || name.size() > kNameMax) return false;
    return std::all_of(name.begin(), name.end(), [](char c) { return c >= 0x21 && c <= 0x7e; });
}

void put_le(uint8_t* p, uint64_t v, size_t n) {
    for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint64_t get_le(const uint8_t* p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
    return v;
}
uint64_t get_be(const uint8_t* p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v = (v << 8) | p[i];
    return v;
}

std::string hex(uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
    return buf;
}

MetadataError malformed(const std::string& what) {
    return MetadataError(MetadataError::Kind::Malformed, "metadata malformed: " + what);
}

// The superblock copies live at sb_offset and sb_offset + kMdBlock.
uint64_t sb_offset_for(uint64_t backing_or_md_size, bool internal) {
    if (align_down(backing_or_md_size, kMdBlock) < kSuperblockArea)
        throw std::invalid_argument("device of " + std::to_string(backing_or_md_size) +
                                    " bytes is too small to hold Duet metadata");
    return internal ? align_down(backing_or_md_size, kMdBlock) - kSuperblockArea : 0;
}

struct Copy {
    bool usable = false;  // decoded fine
    uint64_t seq = 0;
    Superblock sb;
    std::optional<MetadataError> error;
};

Copy read_copy(int fd, uint64_t offset) {
    AlignedBuffer buf(kMdBlock);
    pread_all(fd, buf.data(), kMdBlock, offset, "reading the superblock");
    Copy c;
    try {
        c.sb = decode_superblock(std::span<const uint8_t, kMdBlock>(buf.data(), kMdBlock), c.seq);
        c.usable = true;
    } catch (const MetadataError& e) {
        c.error = e;
    }
    return c;
}

// Which copy to trust, by the rules in read_superblock's comment. Returns the index of the newest
// usable copy, or throws the most telling error.
size_t choose(const std::array<Copy, 2>& copies) {
    using K = MetadataError::Kind;
    // An intact copy we cannot use stops everything: never fall back to older metadata.
    for (const auto& c : copies)
        if (c.error && c.error->kind() != K::Checksum && c.error->kind() != K::NoMagic) throw *c.error;
    if (copies[0].usable && copies[1].usable) return copies[1].seq > copies[0].seq ? 1 : 0;
    if (copies[0].usable) return 0;
    if (copies[1].usable) return 1;
    for (const auto& c : copies)
        if (c.error->kind() == K::Checksum) throw *c.error;
    throw *copies[0].error;  // both: no magic
}

Superblock read_newest(int fd, uint64_t sb_offset) {
    std::array<Copy, 2> copies{read_copy(fd, sb_offset), read_copy(fd, sb_offset + kMdBlock)};
    return copies[choose(copies)].sb;
}

void zero_range(int fd, uint64_t offset, uint64_t size, const char* what) {
    constexpr size_t kChunk = 1u << 20;
    AlignedBuffer zeros(kChunk);
    while (size > 0) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(size, kChunk));
        pwrite_all(fd, zeros.data(), n, offset, what);
        offset += n;
        size -= n;
    }
}

// Builds the CRC32C table once (reflected Castagnoli polynomial).
struct CrcTable {
    std::array<uint32_t, 256> t{};
    CrcTable() {
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            t[i] = c;
        }
    }
};

}  // namespace

// ---- layout ---------------------------------------------------------------------------------

Layout compute_layout(uint64_t backing_size, bool internal, uint64_t md_device_size, uint32_t block_size,
                      uint32_t al_slots) {
    if (auto p = geometry_problem(block_size, kAlExtentSize, al_slots); !p.empty())
        throw std::invalid_argument("metadata layout: " + p);
    Layout l;
    l.backing_size = backing_size;
    l.internal = internal;
    l.block_size = block_size;
    l.al_extent_size = kAlExtentSize;
    l.al_slots = al_slots;
    l.al_size = uint64_t{kAlRingBlocks} * kMdBlock;
    const uint64_t backing = align_down(backing_size, kMdBlock);
    if (internal) {
        // The bitmap's size depends on the data's, which depends on the bitmap's. Start with a
        // bitmap for every byte that could be data, then shrink it while the data that a smaller
        // bitmap leaves still fits in it: it ends at most one page larger than needed.
        const uint64_t fixed = kSuperblockArea + l.al_size;
        const uint64_t upper = backing > fixed ? backing - fixed : 0;
        l.bitmap_size = bitmap_bytes(upper, block_size);
        while (upper > l.bitmap_size) {
            const uint64_t smaller = bitmap_bytes(upper - l.bitmap_size, block_size);
            if (smaller >= l.bitmap_size || bitmap_bytes(upper - smaller, block_size) > smaller) break;
            l.bitmap_size = smaller;
        }
        const uint64_t md = fixed + l.bitmap_size;
        if (backing < md + kMinDataSize)
            throw std::invalid_argument("backing device of " + std::to_string(backing_size) +
                                        " bytes is too small for internal metadata: it needs at least " +
                                        std::to_string(md + kMinDataSize) + " bytes (" + std::to_string(md) +
                                        " bytes of metadata plus " + std::to_string(kMinDataSize) +
                                        " bytes of data)");
        l.data_size = backing - md;
        l.md_offset = l.data_size;
        l.md_size = md;
        l.bitmap_offset = l.md_offset;
        l.al_offset = l.bitmap_offset + l.bitmap_size;
        l.sb_offset = l.al_offset + l.al_size;
    } else {
        if (backing < kMinDataSize)
            throw std::invalid_argument("backing device of " + std::to_string(backing_size) +
                                        " bytes is too small: a replica needs at least " +
                                        std::to_string(kMinDataSize) + " bytes of data");
        l.data_size = backing;
        l.bitmap_size = bitmap_bytes(l.data_size, block_size);
        l.md_offset = 0;
        l.md_size = kSuperblockArea + l.al_size + l.bitmap_size;
        if (md_device_size < l.md_size)
            throw std::invalid_argument("metadata device of " + std::to_string(md_device_size) +
                                        " bytes is too small: metadata for a " + std::to_string(l.data_size) +
                                        "-byte disk needs " + std::to_string(l.md_size) + " bytes");
        l.sb_offset = 0;
        l.al_offset = kSuperblockArea;
        l.bitmap_offset = l.al_offset + l.al_size;
    }
    if (l.extents() > UINT32_MAX)
        throw std::invalid_argument("backing device of " + std::to_string(backing_size) +
                                    " bytes has more activity-log extents than fit in 32 bits");
    return l;
}

// ---- superblock codec -------------------------------------------------------------------------

std::array<uint8_t, kMdBlock> encode_superblock(const Superblock& sb, uint64_t seq) {
    if (sb.version != kMdVersion)
        throw std::invalid_argument("superblock: this duet writes metadata version " + std::to_string(kMdVersion) +
                                    ", not " + std::to_string(sb.version));
    if (auto p = geometry_problem(sb.block_size, sb.al_extent_size, sb.al_slots); !p.empty())
        throw std::invalid_argument("superblock: " + p);
    if (!valid_name(sb.replica))
        throw std::invalid_argument("superblock: replica name '" + sb.replica +
                                    "' must be 1..64 printable ASCII characters without spaces");
    if (static_cast<uint8_t>(sb.disk) > static_cast<uint8_t>(proto::repl::Disk::UpToDate))
        throw std::invalid_argument("superblock: invalid disk state " + std::to_string(static_cast<unsigned>(sb.disk)));
    if ((sb.flags & ~kMdKnownFlags) != 0)
        throw std::invalid_argument("superblock: unknown flags " + hex(sb.flags & ~kMdKnownFlags));

    std::array<uint8_t, kMdBlock> b{};
    std::copy(kSbMagic.begin(), kSbMagic.end(), b.begin());
    put_le(&b[8], sb.version, 4);
    put_le(&b[12], sb.flags, 4);
    put_le(&b[16], seq, 8);
    put_le(&b[24], sb.data_size, 8);
    put_le(&b[32], sb.block_size, 4);
    put_le(&b[36], sb.al_extent_size, 4);
    put_le(&b[40], sb.al_slots, 4);
    b[44] = static_cast<uint8_t>(sb.disk);
    b[45] = static_cast<uint8_t>(sb.replica.size());
    put_le(&b[48], sb.gen.current, 8);
    put_le(&b[56], sb.gen.bitmap, 8);
    put_le(&b[64], sb.gen.history[0], 8);
    put_le(&b[72], sb.gen.history[1], 8);
    put_le(&b[80], sb.al_seq, 8);
    std::copy(sb.replica.begin(), sb.replica.end(), b.begin() + kNameOffset);
    put_le(&b[kCrcOffset], crc32c(std::span<const uint8_t>(b.data(), kCrcOffset)), 4);
    return b;
}

Superblock decode_superblock(std::span<const uint8_t, kMdBlock> b, uint64_t& seq) {
    using K = MetadataError::Kind;
    if (!std::equal(kSbMagic.begin(), kSbMagic.end(), b.begin()))
        throw MetadataError(K::NoMagic, "no Duet metadata (magic)");
    const uint32_t stored = static_cast<uint32_t>(get_le(&b[kCrcOffset], 4));
    const uint32_t computed = crc32c(b.first(kCrcOffset));
    if (stored != computed)
        throw MetadataError(K::Checksum, "checksum mismatch: metadata corrupt (stored " + hex(stored) +
                                             ", computed " + hex(computed) + ")");
    Superblock sb;
    sb.version = static_cast<uint32_t>(get_le(&b[8], 4));
    if (sb.version > kMdVersion)
        throw MetadataError(K::NewerVersion, "version " + std::to_string(sb.version) +
                                                 " is newer than this duet (it reads version " +
                                                 std::to_string(kMdVersion) + "): upgrade duet");
    if (sb.version == 0) throw malformed("version 0");
    sb.flags = static_cast<uint32_t>(get_le(&b[12], 4));
    seq = get_le(&b[16], 8);
    sb.data_size = get_le(&b[24], 8);
    sb.block_size = static_cast<uint32_t>(get_le(&b[32], 4));
    sb.al_extent_size = static_cast<uint32_t>(get_le(&b[36], 4));
    sb.al_slots = static_cast<uint32_t>(get_le(&b[40], 4));
    const uint8_t disk = b[44];
    const uint8_t name_len = b[45];
    sb.gen.current = get_le(&b[48], 8);
    sb.gen.bitmap = get_le(&b[56], 8);
    sb.gen.history[0] = get_le(&b[64], 8);
    sb.gen.history[1] = get_le(&b[72], 8);
    sb.al_seq = get_le(&b[80], 8);

    if ((sb.flags & ~kMdKnownFlags) != 0) throw malformed("unknown flags " + hex(sb.flags & ~kMdKnownFlags));
    if (auto p = geometry_problem(sb.block_size, sb.al_extent_size, sb.al_slots); !p.empty()) throw malformed(p);
    if (sb.data_size < kMinDataSize || sb.data_size % kMdBlock != 0)
        throw malformed("data size " + std::to_string(sb.data_size) + " is not a multiple of 4096 of at least " +
                        std::to_string(kMinDataSize));
    if (disk > static_cast<uint8_t>(proto::repl::Disk::UpToDate))
        throw malformed("disk state " + std::to_string(disk));
    sb.disk = static_cast<proto::repl::Disk>(disk);
    if (name_len == 0 || name_len > kNameMax) throw malformed("replica name length " + std::to_string(name_len));
    sb.replica.assign(reinterpret_cast<const char*>(&b[kNameOffset]), name_len);
    if (!valid_name(sb.replica)) throw malformed("replica name is not printable ASCII");
    return sb;
}

// ---- superblock I/O ---------------------------------------------------------------------------

Superblock read_superblock(int fd, const Layout& layout) {
    using K = MetadataError::Kind;
    Superblock sb = read_newest(fd, layout.sb_offset);
    if (sb.data_size != layout.data_size)
        throw MetadataError(K::LayoutMismatch,
                            "metadata says device size " + std::to_string(sb.data_size) + " but the layout gives " +
                                std::to_string(layout.data_size) +
                                " (was the backing device resized, or the metadata created for another one?)");
    if (sb.block_size != layout.block_size)
        throw MetadataError(K::LayoutMismatch, "metadata was created with a block size of " +
                                                   std::to_string(sb.block_size) + " bytes but the layout uses " +
                                                   std::to_string(layout.block_size));
    if (sb.al_extent_size != layout.al_extent_size || sb.al_slots != layout.al_slots)
        throw MetadataError(K::LayoutMismatch,
                            "metadata was created with " + std::to_string(sb.al_slots) + " activity-log slots of " +
                                std::to_string(sb.al_extent_size) + " bytes but the layout uses " +
                                std::to_string(layout.al_slots) + " of " + std::to_string(layout.al_extent_size));
    return sb;
}

void write_superblock(int fd, const Layout& layout, const Superblock& sb) {
    if (sb.data_size != layout.data_size || sb.block_size != layout.block_size ||
        sb.al_extent_size != layout.al_extent_size || sb.al_slots != layout.al_slots)
        throw std::invalid_argument("superblock does not match the layout it is written with (data size " +
                                    std::to_string(sb.data_size) + " vs " + std::to_string(layout.data_size) + ")");
    std::array<Copy, 2> copies{read_copy(fd, layout.sb_offset), read_copy(fd, layout.sb_offset + kMdBlock)};
    using K = MetadataError::Kind;
    for (const auto& c : copies)
        if (c.error && c.error->kind() != K::Checksum && c.error->kind() != K::NoMagic) throw *c.error;
    // Overwrite an unusable copy if there is one, else the older; the survivor is the fallback.
    size_t slot = 0;
    if (!copies[0].usable) slot = 0;
    else if (!copies[1].usable) slot = 1;
    else slot = copies[0].seq <= copies[1].seq ? 0 : 1;
    const uint64_t seq = std::max(copies[0].usable ? copies[0].seq : 0, copies[1].usable ? copies[1].seq : 0) + 1;
    const auto bytes = encode_superblock(sb, seq);
    AlignedBuffer buf(kMdBlock);
    std::copy(bytes.begin(), bytes.end(), buf.data());
    pwrite_all(fd, buf.data(), kMdBlock, layout.sb_offset + slot * kMdBlock, "writing the superblock");
    datasync(fd, "writing the superblock");
}

Layout layout_of_existing(int fd, uint64_t backing_size, bool internal, uint64_t md_device_size) {
    const Superblock sb = read_newest(fd, sb_offset_for(internal ? backing_size : md_device_size, internal));
    Layout l = compute_layout(backing_size, internal, md_device_size, sb.block_size, sb.al_slots);
    if (sb.al_extent_size != l.al_extent_size)
        throw MetadataError(MetadataError::Kind::LayoutMismatch,
                            "metadata uses activity-log extents of " + std::to_string(sb.al_extent_size) +
                                " bytes; this duet uses " + std::to_string(l.al_extent_size));
    if (sb.data_size != l.data_size)
        throw MetadataError(MetadataError::Kind::LayoutMismatch,
                            "metadata says device size " + std::to_string(sb.data_size) + " but the layout gives " +
                                std::to_string(l.data_size) +
                                " (was the backing device resized, or the metadata created for another one?)");
    return l;
}

void create_md(int fd, const Layout& layout, const std::string& replica) {
    Superblock sb;
    sb.data_size = layout.data_size;
    sb.block_size = layout.block_size;
    sb.al_extent_size = layout.al_extent_size;
    sb.al_slots = layout.al_slots;
    sb.gen = proto::repl::GenIds{kJustCreated, 0, {0, 0}};
    sb.disk = proto::repl::Disk::Inconsistent;
    sb.flags = kMdClean;
    sb.replica = replica;
    // Encode first: a bad name fails before anything on the disk is touched.
    const auto first = encode_superblock(sb, 1);
    const auto second = encode_superblock(sb, 2);
    zero_range(fd, layout.bitmap_offset, layout.bitmap_size, "zeroing the bitmap");
    zero_range(fd, layout.al_offset, layout.al_size, "zeroing the activity log");
    AlignedBuffer buf(kSuperblockArea);
    std::copy(first.begin(), first.end(), buf.data());
    std::copy(second.begin(), second.end(), buf.data() + kMdBlock);
    pwrite_all(fd, buf.data(), buf.size(), layout.sb_offset, "writing the superblock");
    datasync(fd, "creating metadata");
}

// ---- filesystem check -------------------------------------------------------------------------

std::optional<std::string> filesystem_in_the_way(int fd, uint64_t data_size, const std::string& device) {
    // The first 4 KiB hold both superblocks we know; a shorter device simply has none.
    AlignedBuffer head(kMdBlock);
    size_t got = 0;
    while (got < head.size()) {
        const ssize_t n = ::pread(fd, head.data() + got, head.size() - got, static_cast<off_t>(got));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw std::system_error(errno, std::generic_category(), "reading the start of " + device);
        if (n == 0) break;
        got += static_cast<size_t>(n);
    }
    const uint8_t* b = head.data();
    std::string type;
    uint64_t fs_size = 0;
    std::string advice;
    const uint8_t* ext = b + 1024;
    if (get_le(ext + 0x38, 2) == 0xEF53) {
        const uint32_t log_block = static_cast<uint32_t>(get_le(ext + 0x18, 4));
        if (log_block > 6) return std::nullopt;  // not a real ext superblock (blocks over 64 KiB)
        const uint32_t compat = static_cast<uint32_t>(get_le(ext + 0x5C, 4));
        const uint32_t incompat = static_cast<uint32_t>(get_le(ext + 0x60, 4));
        const uint32_t ro_compat = static_cast<uint32_t>(get_le(ext + 0x64, 4));
        uint64_t blocks = get_le(ext + 0x04, 4);
        if (incompat & 0x80) blocks |= get_le(ext + 0x150, 4) << 32;  // 64bit feature
        fs_size = blocks * (uint64_t{1024} << log_block);
        // extents, 64bit, flex_bg, or ext4-only read-only features: ext4; a journal: ext3.
        if ((incompat & (0x40 | 0x80 | 0x200)) != 0 || (ro_compat & (0x8 | 0x10 | 0x20 | 0x40 | 0x400)) != 0)
            type = "ext4";
        else if (compat & 0x4)
            type = "ext3";
        else
            type = "ext2";
        advice = "shrink it first (resize2fs)";
    } else if (std::memcmp(b, "XFSB", 4) == 0) {
        fs_size = get_be(b + 8, 8) * get_be(b + 4, 4);
        type = "XFS";
        advice = "XFS cannot shrink: copy the data elsewhere first";
    } else {
        return std::nullopt;
    }
    if (fs_size <= data_size) return std::nullopt;
    return "the " + type + " filesystem on " + device + " (" + std::to_string(fs_size) +
           " bytes) is larger than the space left for data with internal metadata (" + std::to_string(data_size) +
           " bytes): " + advice + " or use meta-disk on a separate device, or --force to overwrite its end";
}

// ---- shared helpers ---------------------------------------------------------------------------

uint32_t crc32c(std::span<const uint8_t> bytes) {
    static const CrcTable table;
    uint32_t c = 0xFFFFFFFFu;
    for (uint8_t byte : bytes) c = table.t[(c ^ byte) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

AlignedBuffer::AlignedBuffer(size_t size) : size_(size) {
    const size_t alloc = align_up(std::max<size_t>(size, 1), kMdBlock);
    void* p = std::aligned_alloc(kMdBlock, alloc);
    if (p == nullptr) throw std::bad_alloc();
    std::memset(p, 0, alloc);
    data_.reset(static_cast<uint8_t*>(p));
}

void AlignedBuffer::Free::operator()(uint8_t* p) const { std::free(p); }

void pread_all(int fd, void* buf, size_t len, uint64_t offset, const char* what) {
    auto* p = static_cast<uint8_t*>(buf);
    size_t done = 0;
    while (done < len) {
        const ssize_t n = ::pread(fd, p + done, len - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            throw std::system_error(errno, std::generic_category(),
                                    std::string(what) + ": read at offset " + std::to_string(offset + done));
        if (n == 0)
            throw std::system_error(EIO, std::generic_category(),
                                    std::string(what) + ": device ends at offset " + std::to_string(offset + done) +
                                        ", expected " + std::to_string(len - done) + " more bytes");
        done += static_cast<size_t>(n);
    }
}

void pwrite_all(int fd, const void* buf, size_t len, uint64_t offset, const char* what) {
    const auto* p = static_cast<const uint8_t*>(buf);
    size_t done = 0;
    while (done < len) {
        const ssize_t n = ::pwrite(fd, p + done, len - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            throw std::system_error(n < 0 ? errno : EIO, std::generic_category(),
                                    std::string(what) + ": write at offset " + std::to_string(offset + done));
        done += static_cast<size_t>(n);
    }
}

void datasync(int fd, const char* what) {
    while (::fdatasync(fd) != 0) {
        if (errno == EINTR) continue;
        throw std::system_error(errno, std::generic_category(), std::string(what) + ": fdatasync");
    }
}

}  // namespace duet::replication
