#include <gtest/gtest.h>

#include "proto/control.hpp"

using namespace duet::proto::control;

TEST(ControlCodec, RequestRoundTrip) {
    Request r{42, "status", Json{{"verbose", true}}};
    std::string line = encode(r);
    ASSERT_EQ(line.back(), '\n');
    EXPECT_EQ(line.find('\n'), line.size() - 1) << "a message is exactly one line";
    std::string err;
    auto d = decode_request(line, err);
    ASSERT_TRUE(d) << err;
    EXPECT_EQ(d->id, 42u);
    EXPECT_EQ(d->command, "status");
    EXPECT_EQ(d->args, r.args);
}

TEST(ControlCodec, NullArgsMeanNoArguments) {
    std::string err;
    auto d = decode_request(encode(Request{1, "status", nullptr}), err);
    ASSERT_TRUE(d) << err;
    EXPECT_EQ(d->args, Json::object());
    d = decode_request(R"({"version":1,"command":"status","args":null})", err);
    ASSERT_TRUE(d) << err;
    EXPECT_EQ(d->args, Json::object());
}

TEST(ControlCodec, ResponseRoundTripOkAndError) {
    std::string err;
    auto ok = decode_response(encode(Response{7, true, Json{{"node", "alpha"}}, ""}), err);
    ASSERT_TRUE(ok) << err;
    EXPECT_TRUE(ok->ok);
    EXPECT_EQ(ok->id, 7u);
    EXPECT_EQ(ok->result["node"], "alpha");
    auto bad = decode_response(encode(Response{8, false, {}, "unknown command 'x'"}), err);
    ASSERT_TRUE(bad) << err;
    EXPECT_FALSE(bad->ok);
    EXPECT_EQ(bad->error, "unknown command 'x'");
}

TEST(ControlCodec, EventRoundTrip) {
    std::string err;
    Json ev{{"type", "peer_dead"}, {"node", "beta"}, {"silence_ms", 500}};
    auto d = decode_event(encode(Event{ev}), err);
    ASSERT_TRUE(d) << err;
    EXPECT_EQ(d->event, ev);
}

TEST(ControlCodec, StringsWithNewlinesStayOneLine) {
    std::string line = encode(Response{1, false, {}, "two\nlines"});
    EXPECT_EQ(line.find('\n'), line.size() - 1);
    std::string err;
    auto d = decode_response(line, err);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->error, "two\nlines");
}

TEST(ControlCodec, InvalidUtf8IsReplacedNotThrown) {
    std::string bad = "caf\xc3";  // truncated UTF-8
    std::string line;
    ASSERT_NO_THROW(line = encode(Response{1, false, {}, bad}));
    std::string err;
    EXPECT_TRUE(decode_response(line, err)) << err;
}

TEST(ControlCodec, RejectsBadRequests) {
    std::string err;
    EXPECT_FALSE(decode_request("not json", err));
    EXPECT_EQ(err, "not valid JSON");
    EXPECT_FALSE(decode_request("[1,2]", err));
    EXPECT_EQ(err, "not a JSON object");
    EXPECT_FALSE(decode_request(R"({"command":"status"})", err));
    EXPECT_EQ(err, "missing integer field 'version'");
    EXPECT_FALSE(decode_request(R"({"version":2,"command":"status"})", err));
    EXPECT_NE(err.find("unsupported protocol version 2"), std::string::npos) << err;
    EXPECT_FALSE(decode_request(R"({"version":1})", err));
    EXPECT_EQ(err, "missing string field 'command'");
    EXPECT_FALSE(decode_request(R"({"version":1,"command":""})", err));
    EXPECT_FALSE(decode_request(R"({"version":1,"command":"x","args":[1]})", err));
    EXPECT_EQ(err, "field 'args' must be an object");
    EXPECT_FALSE(decode_request(std::string(kMaxLine + 1, ' '), err));
}

TEST(ControlCodec, RejectsBadResponsesAndEvents) {
    std::string err;
    EXPECT_FALSE(decode_response(R"({"version":1})", err));
    EXPECT_EQ(err, "missing boolean field 'ok'");
    EXPECT_FALSE(decode_response(R"({"version":1,"ok":true})", err));
    EXPECT_EQ(err, "missing field 'result'");
    EXPECT_FALSE(decode_response(R"({"version":1,"ok":false})", err));
    EXPECT_EQ(err, "missing string field 'error'");
    EXPECT_FALSE(decode_event(R"({"version":1,"event":3})", err));
    EXPECT_EQ(err, "missing object field 'event'");
}

TEST(LineSplitter, SplitsAcrossChunks) {
    LineSplitter s;
    s.append("ab");
    EXPECT_FALSE(s.next());
    s.append("c\nde\nf");
    EXPECT_EQ(s.next(), "abc");
    EXPECT_EQ(s.next(), "de");
    EXPECT_FALSE(s.next());
    s.append("\n");
    EXPECT_EQ(s.next(), "f");
    EXPECT_FALSE(s.overflow());
}

TEST(LineSplitter, OverflowIsSticky) {
    LineSplitter s(8);
    s.append("123456789");
    EXPECT_FALSE(s.next());
    EXPECT_TRUE(s.overflow());
    s.append("\nok\n");
    EXPECT_FALSE(s.next());
}

TEST(LineSplitter, LongLineWithNewlineOverflows) {
    LineSplitter s(4);
    s.append("123456\nok\n");
    EXPECT_FALSE(s.next());
    EXPECT_TRUE(s.overflow());
}

TEST(LineSplitter, ExactlyMaxIsFine) {
    LineSplitter s(4);
    s.append("1234\n");
    EXPECT_EQ(s.next(), "1234");
}
