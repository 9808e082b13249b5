// StopMatcher: stop strings found across chunk boundaries, held-back text released on mismatch, several
// stop strings, UTF-8, and results that do not depend on how the text was chunked.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "runtime/stop_matcher.h"

namespace edgellm {
namespace {

struct Outcome {
  std::string emitted;  // everything emitted, including flush()
  bool stopped = false;
  std::string matched;
  std::vector<std::string> emits;  // per push (flush last)
};

Outcome run(const std::vector<std::string>& stops, const std::vector<std::string>& chunks) {
  StopMatcher matcher(stops);
  Outcome out;
  for (const std::string& chunk : chunks) {
    StopMatcher::Result r = matcher.push(chunk);
    out.emitted += r.emit;
    out.emits.push_back(r.emit);
    if (r.stopped) {
      out.stopped = true;
      out.matched = r.matched;
      break;
    }
  }
  const std::string tail = matcher.flush();
  out.emitted += tail;
  out.emits.push_back(tail);
  return out;
}

std::vector<std::string> bytes_of(const std::string& text) {
  std::vector<std::string> chunks;
  for (char c : text) chunks.emplace_back(1, c);
  return chunks;
}

TEST(StopMatcher, NoStopStringsPassesEverythingThrough) {
  const Outcome out = run({}, {"Hello", ", ", "world"});
  EXPECT_FALSE(out.stopped);
  EXPECT_EQ(out.emits, (std::vector<std::string>{"Hello", ", ", "world", ""}));
}

TEST(StopMatcher, EmptyStopStringsAreIgnored) {
  const Outcome out = run({""}, {"abc"});
  EXPECT_FALSE(out.stopped);
  EXPECT_EQ(out.emitted, "abc");
}

TEST(StopMatcher, StopInsideOneChunk) {
  const Outcome out = run({"<|im_end|>"}, {"The answer is 4.<|im_end|>\nmore"});
  EXPECT_TRUE(out.stopped);
  EXPECT_EQ(out.matched, "<|im_end|>");
  EXPECT_EQ(out.emitted, "The answer is 4.");
}

TEST(StopMatcher, StopSplitAcrossManyChunks) {
  const Outcome out = run({"<|im_end|>"}, {"Done", "<", "|", "im", "_e", "nd", "|", ">", "ignored"});
  EXPECT_TRUE(out.stopped);
  EXPECT_EQ(out.matched, "<|im_end|>");
  EXPECT_EQ(out.emitted, "Done");
  // Nothing of the stop string is emitted while it is being assembled.
  EXPECT_EQ(out.emits, (std::vector<std::string>{"Done", "", "", "", "", "", "", "", ""}));
}

TEST(StopMatcher, PartialPrefixThenMismatchReleasesHeldText) {
  StopMatcher matcher({"STOP"});
  StopMatcher::Result r = matcher.push("abc ST");
  EXPECT_EQ(r.emit, "abc ");
  EXPECT_FALSE(r.stopped);
  r = matcher.push("O");
  EXPECT_EQ(r.emit, "");
  r = matcher.push("RY");  // "STORY" is not "STOP": all held text comes out
  EXPECT_EQ(r.emit, "STORY");
  EXPECT_FALSE(r.stopped);
  r = matcher.push(" S");
  EXPECT_EQ(r.emit, " ");
  EXPECT_EQ(matcher.flush(), "S");  // end of generation releases the rest
}

TEST(StopMatcher, MismatchKeepsALaterPossibleStart) {
  // "aab": after "aa" the held "a" may still start "ab" once the first "a" fails.
  const Outcome out = run({"ab"}, {"a", "a", "b"});
  EXPECT_TRUE(out.stopped);
  EXPECT_EQ(out.emitted, "a");
  EXPECT_EQ(out.emits[0], "");
  EXPECT_EQ(out.emits[1], "a");
}

TEST(StopMatcher, MultipleStopStringsFirstToCompleteWins) {
  const std::vector<std::string> stops = {"\n\nUser:", "</s>", "###"};
  Outcome out = run(stops, {"reply ", "#", "## more </s>"});
  EXPECT_TRUE(out.stopped);
  EXPECT_EQ(out.matched, "###");
  EXPECT_EQ(out.emitted, "reply ");
  out = run(stops, {"reply\n", "\nUs", "er: hi"});
  EXPECT_EQ(out.matched, "\n\nUser:");
  EXPECT_EQ(out.emitted, "reply");
  // Same start, one a prefix of the other: the shorter completes first, as it would byte by byte.
  out = run({"abcd", "ab"}, {"xabcd"});
  EXPECT_EQ(out.matched, "ab");
  EXPECT_EQ(out.emitted, "x");
  // Same end: the longer one (which started earlier) wins and less text is emitted.
  out = run({"c", "abc"}, {"xab", "c"});
  EXPECT_EQ(out.matched, "abc");
  EXPECT_EQ(out.emitted, "x");
}

TEST(StopMatcher, Utf8MultiByteStopStrings) {
  const std::string stop = "\xe3\x80\x82\xe7\xbb\x93\xe6\x9d\x9f";  // "。结束"
  const std::string text = "\xe4\xbd\xa0\xe5\xa5\xbd" + stop + "\xe5\x90\x8e";  // "你好" + stop + "后"
  const Outcome whole = run({stop}, {text});
  EXPECT_TRUE(whole.stopped);
  EXPECT_EQ(whole.emitted, "\xe4\xbd\xa0\xe5\xa5\xbd");
  const Outcome bytewise = run({stop}, bytes_of(text));
  EXPECT_TRUE(bytewise.stopped);
  EXPECT_EQ(bytewise.emitted, "\xe4\xbd\xa0\xe5\xa5\xbd");
  // Sharing a first byte with the stop string is not enough: "。" followed by something else is emitted.
  const Outcome near = run({stop}, bytes_of("\xe3\x80\x82\xe5\xa5\xbd"));
  EXPECT_FALSE(near.stopped);
  EXPECT_EQ(near.emitted, "\xe3\x80\x82\xe5\xa5\xbd");
}

TEST(StopMatcher, EmitsWholeUtf8Characters) {
  StopMatcher matcher({"END"});
  StopMatcher::Result r = matcher.push("a\xe4\xbd");  // "a" + the first two bytes of "你"
  EXPECT_EQ(r.emit, "a");
  r = matcher.push("\xa0\xf0\x9f");  // completes "你", starts a 4-byte emoji
  EXPECT_EQ(r.emit, "\xe4\xbd\xa0");
  r = matcher.push("\x98\x80!");
  EXPECT_EQ(r.emit, "\xf0\x9f\x98\x80!");
  // Invalid UTF-8 is passed through rather than held.
  r = matcher.push("\x80\x80");
  EXPECT_EQ(r.emit, "\x80\x80");
  EXPECT_EQ(matcher.flush(), "");
}

TEST(StopMatcher, ResultDoesNotDependOnChunking) {
  const std::vector<std::string> stops = {"<|endoftext|>", "<|im_end|>", "\n\n\n"};
  const std::string text = "Some text with <|im_start|> and <| and \n\n then <|im_end|> after";
  const Outcome whole = run(stops, {text});
  for (size_t chunk_size = 1; chunk_size <= 7; ++chunk_size) {
    std::vector<std::string> chunks;
    for (size_t pos = 0; pos < text.size(); pos += chunk_size) chunks.push_back(text.substr(pos, chunk_size));
    const Outcome out = run(stops, chunks);
    EXPECT_EQ(out.emitted, whole.emitted) << "chunk size " << chunk_size;
    EXPECT_EQ(out.matched, whole.matched) << "chunk size " << chunk_size;
  }
  EXPECT_EQ(whole.emitted, "Some text with <|im_start|> and <| and \n\n then ");
}

TEST(StopMatcher, PushAfterStopReturnsNothing) {
  StopMatcher matcher({"x"});
  EXPECT_TRUE(matcher.push("abxcd").stopped);
  EXPECT_TRUE(matcher.stopped());
  const StopMatcher::Result r = matcher.push("more");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.matched, "x");
  EXPECT_EQ(r.emit, "");
  EXPECT_EQ(matcher.flush(), "");
}

TEST(StopMatcher, FlushWithoutStopReturnsHeldPrefix) {
  const Outcome out = run({"<|im_end|>"}, {"text <|im_"});
  EXPECT_FALSE(out.stopped);
  EXPECT_EQ(out.emits, (std::vector<std::string>{"text ", "<|im_"}));
}

}  // namespace
}  // namespace edgellm
