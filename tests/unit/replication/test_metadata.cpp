// On-disk metadata: layout arithmetic, superblock codec and corruption detection, the two-copy
// torn-write protection, create-md, and the filesystem check against real mkfs.ext4 images.
#include "tests/unit/replication/temp_file.hpp"
#include "daemon/replication/metadata.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "daemon/replication/genid.hpp"

namespace duet::replication {
namespace {

using ::testing::HasSubstr;
using proto::repl::Disk;

constexpr uint64_t KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;

using testing::TempFile;

Superblock sample(const Layout& l) {
    Superblock sb;
    sb.data_size = l.data_size;
    sb.block_size = l.block_size;
    sb.al_extent_size = l.al_extent_size;
    sb.al_slots = l.al_slots;
    sb.gen = {0x1122334455667788ull, 0x99AABBCCDDEEFF00ull, {0x0102030405060708ull, 0x1112131415161718ull}};
    sb.disk = Disk::UpToDate;
    sb.flags = kMdPrimary;
    sb.al_seq = 12345;
    sb.replica = "r0";
    return sb;
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "(no error)";
}

// ---- layout ---------------------------------------------------------------------------------

TEST(Layout, InternalOneGiB) {
    // Bitmap sized for 1 GiB - 40 KiB of data: 262134 bits -> 4096 words -> 32 KiB (8 pages).
    const Layout l = compute_layout(1 * GiB, true);
    EXPECT_EQ(l.bitmap_size, 32768u);
    EXPECT_EQ(l.al_size, 32768u);
    EXPECT_EQ(l.md_size, 8192u + 32768u + 32768u);
    EXPECT_EQ(l.data_size, 1 * GiB - 73728);
    EXPECT_EQ(l.md_offset, l.data_size);
    EXPECT_EQ(l.bitmap_offset, l.data_size);
    EXPECT_EQ(l.al_offset, l.data_size + 32768);
    EXPECT_EQ(l.sb_offset, 1 * GiB - 8192);
    EXPECT_EQ(l.blocks(), l.data_size / 4096);
    EXPECT_EQ(l.extents(), 256u);  // the last one partial
    EXPECT_TRUE(l.internal);
}

TEST(Layout, InternalUnalignedBackingIsAlignedDown) {
    Layout a = compute_layout(1 * GiB + 1000, true);
    Layout b = compute_layout(1 * GiB, true);
    EXPECT_EQ(a.backing_size, 1 * GiB + 1000);
    a.backing_size = b.backing_size;
    EXPECT_EQ(a, b);
}

TEST(Layout, InternalHundredGiB) {
    // 107374141440 bytes -> 26214390 bits -> 409600 words -> 3276800 bytes (800 pages exactly).
    const Layout l = compute_layout(100 * GiB, true);
    EXPECT_EQ(l.bitmap_size, 3276800u);
    EXPECT_EQ(l.data_size, 100 * GiB - 40960 - 3276800);
    EXPECT_EQ(l.sb_offset, 100 * GiB - 8192);
}

TEST(Layout, InternalLargeBlocks) {
    // 64 KiB blocks: 16384 bits -> 256 words -> 2 KiB, one page.
    const Layout l = compute_layout(1 * GiB, true, 0, 65536);
    EXPECT_EQ(l.block_size, 65536u);
    EXPECT_EQ(l.bitmap_size, 4096u);
    EXPECT_EQ(l.data_size, 1 * GiB - 45056);
    EXPECT_EQ(l.blocks(), (l.data_size + 65535) / 65536);
}

TEST(Layout, External) {
    const Layout l = compute_layout(1 * GiB + 123, false, 1 * MiB);
    EXPECT_FALSE(l.internal);
    EXPECT_EQ(l.data_size, 1 * GiB);
    EXPECT_EQ(l.md_offset, 0u);
    EXPECT_EQ(l.sb_offset, 0u);
    EXPECT_EQ(l.al_offset, 8192u);
    EXPECT_EQ(l.bitmap_offset, 8192u + 32768u);
    EXPECT_EQ(l.bitmap_size, 32768u);  // 262144 bits
    EXPECT_EQ(l.md_size, 73728u);
    EXPECT_NO_THROW(compute_layout(1 * GiB, false, 73728));
    EXPECT_THAT(error_of([] { compute_layout(1 * GiB, false, 73727); }),
                HasSubstr("metadata device of 73727 bytes is too small: metadata for a 1073741824-byte disk needs "
                          "73728 bytes"));
}

TEST(Layout, TooSmall) {
    // Smallest internal: 1 MiB of data + 8 KiB superblocks + 32 KiB log + one bitmap page.
    const uint64_t min = 1 * MiB + 45056;
    EXPECT_EQ(compute_layout(min, true).data_size, 1 * MiB);
    EXPECT_THAT(error_of([&] { compute_layout(min - 1, true); }),
                HasSubstr("backing device of 1093631 bytes is too small for internal metadata: it needs at least "
                          "1093632 bytes"));
    EXPECT_THAT(error_of([] { compute_layout(4096, true); }), HasSubstr("too small for internal metadata"));
    EXPECT_THAT(error_of([] { compute_layout(1 * MiB - 4096, false, 1 * MiB); }),
                HasSubstr("backing device of 1044480 bytes is too small"));
}

TEST(Layout, BadParameters) {
    EXPECT_THAT(error_of([] { compute_layout(1 * GiB, true, 0, 3000); }),
                HasSubstr("block size 3000 is not a power of two"));
    EXPECT_THAT(error_of([] { compute_layout(1 * GiB, true, 0, 256); }), HasSubstr("block size 256"));
    EXPECT_THAT(error_of([] { compute_layout(1 * GiB, true, 0, 4096, 0); }), HasSubstr("activity-log slots 0"));
    EXPECT_THAT(error_of([] { compute_layout(1 * GiB, true, 0, 4096, kMaxAlSlots + 1); }),
                HasSubstr("activity-log slots 1018"));
    EXPECT_NO_THROW(compute_layout(1 * GiB, true, 0, 4096, kMaxAlSlots));
}

TEST(Layout, PropertiesHoldForManySizes) {
    for (uint64_t size : std::initializer_list<uint64_t>{1093632, 5 * MiB + 17, 64 * MiB, 1 * GiB - 1, 3 * GiB + 4095, 2000 * GiB}) {
        for (uint32_t bs : {512u, 4096u, 65536u}) {
            for (bool internal : {true, false}) {
                SCOPED_TRACE("size " + std::to_string(size) + " block " + std::to_string(bs) + " internal " +
                             std::to_string(internal));
                const Layout l = compute_layout(size, internal, 4 * GiB, bs);
                EXPECT_EQ(l.data_size % 4096, 0u);
                for (uint64_t off : {l.md_offset, l.sb_offset, l.al_offset, l.bitmap_offset, l.md_size, l.bitmap_size})
                    EXPECT_EQ(off % 4096, 0u);
                // The bitmap has a bit for every block.
                EXPECT_GE(l.bitmap_size * 8, l.blocks());
                // The three parts tile the metadata area without overlap.
                EXPECT_EQ(kSuperblockArea + l.al_size + l.bitmap_size, l.md_size);
                if (internal) {
                    EXPECT_EQ(l.data_size + l.md_size, size - size % 4096);
                    EXPECT_EQ(l.bitmap_offset + l.bitmap_size, l.al_offset);
                    EXPECT_EQ(l.al_offset + l.al_size, l.sb_offset);
                    EXPECT_EQ(l.sb_offset + kSuperblockArea, size - size % 4096);
                    // The bitmap is at most one page bigger than the data needs.
                    EXPECT_LE(l.bitmap_size, ((l.blocks() + 63) / 64 * 8 + 4095) / 4096 * 4096 + 4096);
                } else {
                    EXPECT_EQ(l.data_size, size - size % 4096);
                    EXPECT_EQ(l.sb_offset + kSuperblockArea, l.al_offset);
                    EXPECT_EQ(l.al_offset + l.al_size, l.bitmap_offset);
                }
            }
        }
    }
}

// ---- superblock codec -------------------------------------------------------------------------

TEST(Superblock, RoundTrip) {
    const Layout l = compute_layout(1 * GiB, true);
    const Superblock sb = sample(l);
    const auto bytes = encode_superblock(sb, 77);
    uint64_t seq = 0;
    EXPECT_EQ(decode_superblock(bytes, seq), sb);
    EXPECT_EQ(seq, 77u);
    // Little-endian fields at their documented offsets.
    EXPECT_EQ(std::string(bytes.begin(), bytes.begin() + 8), "DUETMETA");
    EXPECT_EQ(bytes[8], 1);        // version
    EXPECT_EQ(bytes[16], 77);      // seq, low byte first
    EXPECT_EQ(bytes[48], 0x88);    // current, low byte first
    EXPECT_EQ(bytes[96], 'r');     // replica name
    EXPECT_EQ(crc32c(std::span<const uint8_t>(bytes.data(), 4092)),
              uint32_t(bytes[4092]) | uint32_t(bytes[4093]) << 8 | uint32_t(bytes[4094]) << 16 |
                  uint32_t(bytes[4095]) << 24);
}

TEST(Superblock, Crc32cKnownAnswer) {
    // The standard check value of CRC-32C.
    const std::string s = "123456789";
    EXPECT_EQ(crc32c(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size())), 0xE3069283u);
}

TEST(Superblock, EveryFlippedByteIsDetected) {
    const Layout l = compute_layout(1 * GiB, true);
    const auto good = encode_superblock(sample(l), 5);
    for (size_t i = 0; i < good.size(); ++i) {
        for (uint8_t flip : {uint8_t{0x01}, uint8_t{0x80}}) {
            auto bad = good;
            bad[i] ^= flip;
            uint64_t seq = 0;
            try {
                decode_superblock(bad, seq);
                ADD_FAILURE() << "flip of byte " << i << " not detected";
            } catch (const MetadataError& e) {
                // Bytes 0..7 are the magic; the rest is caught by the checksum.
                EXPECT_EQ(e.kind(), i < 8 ? MetadataError::Kind::NoMagic : MetadataError::Kind::Checksum) << i;
            }
        }
    }
}

TEST(Superblock, PreciseErrors) {
    const Layout l = compute_layout(1 * GiB, true);
    std::array<uint8_t, kMdBlock> zeros{};
    uint64_t seq = 0;
    EXPECT_EQ(error_of([&] { decode_superblock(zeros, seq); }), "no Duet metadata (magic)");

    auto bytes = encode_superblock(sample(l), 1);
    bytes[200] ^= 1;
    EXPECT_THAT(error_of([&] { decode_superblock(bytes, seq); }), HasSubstr("checksum mismatch: metadata corrupt"));

    // A newer version with a valid checksum.
    auto reseal = [](std::array<uint8_t, kMdBlock>& b) {
        const uint32_t c = crc32c(std::span<const uint8_t>(b.data(), 4092));
        for (int i = 0; i < 4; ++i) b[4092 + i] = static_cast<uint8_t>(c >> (8 * i));
    };
    bytes = encode_superblock(sample(l), 1);
    bytes[8] = 7;
    reseal(bytes);
    EXPECT_THAT(error_of([&] { decode_superblock(bytes, seq); }), HasSubstr("version 7 is newer than this duet"));

    // Intact but nonsensical fields.
    bytes = encode_superblock(sample(l), 1);
    bytes[44] = 9;  // disk state
    reseal(bytes);
    EXPECT_THAT(error_of([&] { decode_superblock(bytes, seq); }), HasSubstr("metadata malformed: disk state 9"));
    bytes = encode_superblock(sample(l), 1);
    bytes[12] = 0x80;  // unknown flag
    reseal(bytes);
    EXPECT_THAT(error_of([&] { decode_superblock(bytes, seq); }), HasSubstr("unknown flags 0x80"));
}

TEST(Superblock, EncodeRejectsBadFields) {
    const Layout l = compute_layout(1 * GiB, true);
    Superblock sb = sample(l);
    sb.replica = "";
    EXPECT_THROW(encode_superblock(sb, 1), std::invalid_argument);
    sb.replica = "has space";
    EXPECT_THROW(encode_superblock(sb, 1), std::invalid_argument);
    sb.replica = std::string(65, 'x');
    EXPECT_THROW(encode_superblock(sb, 1), std::invalid_argument);
    sb = sample(l);
    sb.flags = 0x100;
    EXPECT_THROW(encode_superblock(sb, 1), std::invalid_argument);
    sb = sample(l);
    sb.block_size = 1000;
    EXPECT_THROW(encode_superblock(sb, 1), std::invalid_argument);
}

// ---- superblock on disk -----------------------------------------------------------------------

TEST(SuperblockIo, CreateMdThenReadWrite) {
    TempFile f(64 * MiB);
    const Layout l = compute_layout(64 * MiB, true);
    create_md(f.fd(), l, "r0");
    Superblock sb = read_superblock(f.fd(), l);
    EXPECT_EQ(sb.gen, (proto::repl::GenIds{kJustCreated, 0, {0, 0}}));
    EXPECT_EQ(sb.disk, Disk::Inconsistent);
    EXPECT_EQ(sb.flags, kMdClean);
    EXPECT_EQ(sb.replica, "r0");
    EXPECT_EQ(sb.data_size, l.data_size);
    EXPECT_FALSE(sb.crashed_primary());

    // Every write is the new newest, whichever copy it lands in.
    for (uint64_t i = 1; i <= 5; ++i) {
        sb.gen.current = 1000 + i;
        sb.flags = i % 2 ? kMdPrimary : kMdClean;
        write_superblock(f.fd(), l, sb);
        EXPECT_EQ(read_superblock(f.fd(), l), sb);
    }
    EXPECT_TRUE(read_superblock(f.fd(), l).crashed_primary());
    // Both copies are valid: one newest, one previous.
    uint64_t s0 = 0, s1 = 0;
    const auto c0 = f.read(l.sb_offset, kMdBlock), c1 = f.read(l.sb_offset + kMdBlock, kMdBlock);
    const Superblock a = decode_superblock(std::span<const uint8_t, kMdBlock>(c0.data(), kMdBlock), s0);
    const Superblock b = decode_superblock(std::span<const uint8_t, kMdBlock>(c1.data(), kMdBlock), s1);
    EXPECT_EQ(std::max(s0, s1), std::min(s0, s1) + 1);
    EXPECT_EQ((s0 > s1 ? a : b).gen.current, 1005u);
    EXPECT_EQ((s0 > s1 ? b : a).gen.current, 1004u);
}

TEST(SuperblockIo, TornWriteFallsBackToTheOtherCopy) {
    TempFile f(64 * MiB);
    const Layout l = compute_layout(64 * MiB, true);
    create_md(f.fd(), l, "r0");
    Superblock older = read_superblock(f.fd(), l);
    older.gen.current = 0xAAAA;
    write_superblock(f.fd(), l, older);
    Superblock newer = older;
    newer.gen.current = 0xBBBB;
    write_superblock(f.fd(), l, newer);
    ASSERT_EQ(read_superblock(f.fd(), l).gen.current, 0xBBBBu);

    // Find the copy holding the newest and tear it: its first half new, second half old garbage.
    uint64_t newest_off = 0;
    for (uint64_t off : {l.sb_offset, l.sb_offset + kMdBlock}) {
        auto c = f.read(off, kMdBlock);
        uint64_t s = 0;
        if (decode_superblock(std::span<const uint8_t, kMdBlock>(c.data(), kMdBlock), s).gen.current == 0xBBBB)
            newest_off = off;
    }
    ASSERT_NE(newest_off, 0u);
    f.write(newest_off + 2048, std::vector<uint8_t>(2048, 0x5A));
    EXPECT_EQ(read_superblock(f.fd(), l).gen.current, 0xAAAAu);

    // The next write replaces the torn copy, not the good one.
    Superblock next = older;
    next.gen.current = 0xCCCC;
    write_superblock(f.fd(), l, next);
    EXPECT_EQ(read_superblock(f.fd(), l).gen.current, 0xCCCCu);
    f.write(newest_off, std::vector<uint8_t>(kMdBlock, 0));  // lose the newest entirely
    EXPECT_EQ(read_superblock(f.fd(), l).gen.current, 0xAAAAu);
}

TEST(SuperblockIo, BothCopiesBad) {
    TempFile f(64 * MiB);
    const Layout l = compute_layout(64 * MiB, true);
    EXPECT_EQ(error_of([&] { read_superblock(f.fd(), l); }), "no Duet metadata (magic)");
    create_md(f.fd(), l, "r0");
    auto c0 = f.read(l.sb_offset, kMdBlock);
    c0[300] ^= 4;
    f.write(l.sb_offset, c0);
    auto c1 = f.read(l.sb_offset + kMdBlock, kMdBlock);
    c1[301] ^= 4;
    f.write(l.sb_offset + kMdBlock, c1);
    EXPECT_THAT(error_of([&] { read_superblock(f.fd(), l); }), HasSubstr("checksum mismatch: metadata corrupt"));
}

TEST(SuperblockIo, NewerVersionInEitherCopyRefusesEvenWithAValidOlderCopy) {
    TempFile f(64 * MiB);
    const Layout l = compute_layout(64 * MiB, true);
    create_md(f.fd(), l, "r0");
    auto b = encode_superblock(sample(l), 1);  // lower seq than create_md's copies
    b[8] = 7;
    const uint32_t c = crc32c(std::span<const uint8_t>(b.data(), 4092));
    for (int i = 0; i < 4; ++i) b[4092 + i] = static_cast<uint8_t>(c >> (8 * i));
    f.write(l.sb_offset + kMdBlock, std::vector<uint8_t>(b.begin(), b.end()));
    EXPECT_THAT(error_of([&] { read_superblock(f.fd(), l); }), HasSubstr("version 7 is newer than this duet"));
    // Nor is newer metadata overwritten.
    EXPECT_THAT(error_of([&] { write_superblock(f.fd(), l, sample(l)); }), HasSubstr("version 7 is newer"));
}

TEST(SuperblockIo, LayoutMismatch) {
    TempFile md(1 * MiB);
    const Layout one = compute_layout(1 * GiB, false, 1 * MiB);
    const Layout two = compute_layout(2 * GiB, false, 1 * MiB);
    create_md(md.fd(), one, "r0");
    EXPECT_EQ(read_superblock(md.fd(), one).data_size, 1 * GiB);
    EXPECT_THAT(error_of([&] { read_superblock(md.fd(), two); }),
                HasSubstr("metadata says device size 1073741824 but the layout gives 2147483648"));
    EXPECT_THAT(error_of([&] { layout_of_existing(md.fd(), 2 * GiB, false, 1 * MiB); }),
                HasSubstr("metadata says device size 1073741824 but the layout gives 2147483648"));
    const Layout big_blocks = compute_layout(1 * GiB, false, 1 * MiB, 8192);
    EXPECT_THAT(error_of([&] { read_superblock(md.fd(), big_blocks); }),
                HasSubstr("metadata was created with a block size of 4096 bytes but the layout uses 8192"));
    EXPECT_THROW(write_superblock(md.fd(), two, sample(one)), std::invalid_argument);
}

TEST(SuperblockIo, LayoutOfExistingUsesTheCreationParameters) {
    TempFile f(64 * MiB + 512);
    const Layout l = compute_layout(64 * MiB + 512, true, 0, 65536, 100);
    create_md(f.fd(), l, "data");
    EXPECT_EQ(layout_of_existing(f.fd(), 64 * MiB + 512, true), l);
    EXPECT_EQ(read_superblock(f.fd(), l).al_slots, 100u);

    TempFile md(1 * MiB);
    const Layout e = compute_layout(256 * MiB, false, 1 * MiB, 512, 7);
    create_md(md.fd(), e, "ext");
    EXPECT_EQ(layout_of_existing(md.fd(), 256 * MiB, false, 1 * MiB), e);
    TempFile empty(1 * MiB);
    EXPECT_EQ(error_of([&] { layout_of_existing(empty.fd(), 256 * MiB, false, 1 * MiB); }), "no Duet metadata (magic)");
}

TEST(SuperblockIo, CreateMdZeroesMetadataAndLeavesDataAlone) {
    TempFile f(8 * MiB, 0xA5);
    const Layout l = compute_layout(8 * MiB, true);
    create_md(f.fd(), l, "r0");
    const auto data_end = f.read(l.data_size - 4096, 4096);
    EXPECT_EQ(std::count(data_end.begin(), data_end.end(), 0xA5), 4096);
    const auto bm = f.read(l.bitmap_offset, l.bitmap_size);
    EXPECT_EQ(std::count(bm.begin(), bm.end(), 0), static_cast<long>(bm.size()));
    const auto al = f.read(l.al_offset, l.al_size);
    EXPECT_EQ(std::count(al.begin(), al.end(), 0), static_cast<long>(al.size()));
    EXPECT_THROW(create_md(f.fd(), l, "bad name"), std::invalid_argument);
}

TEST(SuperblockIo, ReadErrorsNameTheProblem) {
    const Layout l = compute_layout(64 * MiB, true);
    TempFile shorter(32 * MiB);  // the superblock would be past its end
    EXPECT_THAT(error_of([&] { read_superblock(shorter.fd(), l); }), HasSubstr("reading the superblock"));
}

// ---- filesystem in the way ----------------------------------------------------------------------

// Formats `f` with mkfs (real e2fsprogs) with a filesystem of `fs_bytes`.
void mkfs(const TempFile& f, const std::string& type, uint64_t fs_bytes) {
    const std::string cmd = "mkfs." + type + " -F -q -b 4096 " + f.path() + " " + std::to_string(fs_bytes / 1024) +
                            "k >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

TEST(FilesystemInTheWay, Ext4JustAboveAndJustBelowTheLimit) {
    const uint64_t backing = 64 * MiB;
    const Layout l = compute_layout(backing, true);
    {
        TempFile f(backing);
        mkfs(f, "ext4", backing);  // the whole disk: larger than what internal metadata leaves
        auto msg = filesystem_in_the_way(f.fd(), l.data_size, "/dev/x");
        ASSERT_TRUE(msg);
        EXPECT_EQ(*msg, "the ext4 filesystem on /dev/x (67108864 bytes) is larger than the space left for data with "
                        "internal metadata (" + std::to_string(l.data_size) +
                            " bytes): shrink it first (resize2fs) or use meta-disk on a separate device, or --force "
                            "to overwrite its end");
    }
    {
        TempFile f(backing);
        mkfs(f, "ext4", l.data_size + 4096);  // one block too many
        auto msg = filesystem_in_the_way(f.fd(), l.data_size, "/dev/y");
        ASSERT_TRUE(msg);
        EXPECT_THAT(*msg, HasSubstr("(" + std::to_string(l.data_size + 4096) + " bytes)"));
    }
    {
        TempFile f(backing);
        mkfs(f, "ext4", l.data_size);  // exactly fits
        EXPECT_EQ(filesystem_in_the_way(f.fd(), l.data_size, "/dev/z"), std::nullopt);
    }
}

TEST(FilesystemInTheWay, Ext2AndExt3AreNamed) {
    const uint64_t backing = 16 * MiB;
    const Layout l = compute_layout(backing, true);
    for (const std::string type : {"ext2", "ext3"}) {
        TempFile f(backing);
        mkfs(f, type, backing);
        auto msg = filesystem_in_the_way(f.fd(), l.data_size, "disk");
        ASSERT_TRUE(msg) << type;
        EXPECT_THAT(*msg, HasSubstr("the " + type + " filesystem on disk (16777216 bytes)"));
    }
}

TEST(FilesystemInTheWay, Xfs) {
    // An XFS superblock header: magic, block size and data blocks, big-endian.
    TempFile f(16 * MiB);
    std::vector<uint8_t> sb(4096, 0);
    std::memcpy(sb.data(), "XFSB", 4);
    sb[6] = 0x10;   // block size 0x00001000 = 4096
    sb[14] = 0x10;  // data blocks 0x...1000 = 4096: 16 MiB
    f.write(0, sb);
    auto msg = filesystem_in_the_way(f.fd(), 16 * MiB - 4096, "/dev/sdb1");
    ASSERT_TRUE(msg);
    EXPECT_THAT(*msg, HasSubstr("the XFS filesystem on /dev/sdb1 (16777216 bytes)"));
    EXPECT_THAT(*msg, HasSubstr("XFS cannot shrink"));
    EXPECT_EQ(filesystem_in_the_way(f.fd(), 16 * MiB, "/dev/sdb1"), std::nullopt);
}

TEST(FilesystemInTheWay, NothingThere) {
    TempFile zeros(16 * MiB);
    EXPECT_EQ(filesystem_in_the_way(zeros.fd(), 1 * MiB, "d"), std::nullopt);
    TempFile tiny(100);
    EXPECT_EQ(filesystem_in_the_way(tiny.fd(), 0, "d"), std::nullopt);
    TempFile noise(16 * MiB, 0x5A);
    EXPECT_EQ(filesystem_in_the_way(noise.fd(), 1 * MiB, "d"), std::nullopt);
}

}  // namespace
}  // namespace duet::replication
