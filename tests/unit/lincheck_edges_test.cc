// lincheck's edge cases found by cross-checking it with another checker
// (issue 11, item 9): a directory as the history, an empty history, integers
// of 2^63 or more, a field repeated within one line, and which limit (time or
// memory) stopped an undecided check. Part 1 tests the library; part 2 runs
// the real ./lincheck binary ($LINCHECK_BINARY, or next to this test binary)
// with a bounded wait, and stops it by its PID if it overruns.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "lincheck/checker.h"
#include "lincheck/history.h"

namespace {

using namespace lincheck;
using namespace std::chrono_literals;

const char* const kSetLine =
    R"({"id":1,"client":"c","op":"set","key":"x","value":"a","invoke_us":0,"complete_us":10,"outcome":"ok"})";

History parse(const std::string& text) {
  std::istringstream in(text);
  return read_history(in);
}

std::string parse_error(const std::string& text) {
  try {
    parse(text);
  } catch (const ParseError& e) {
    return e.what();
  }
  return "";
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "lincheck_edges.XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name, std::ios::binary) << text;
    return path_ / name;
  }

 private:
  std::filesystem::path path_;
};

// ---- part 1: the library ---------------------------------------------------

TEST(LincheckEdges, ADirectoryIsNotAHistory) {
  TempDir dir;
  EXPECT_THROW(read_history_file(dir.path().string()), std::runtime_error);
  try {
    read_history_file(dir.path().string());
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("directory"), std::string::npos) << e.what();
  }
}

TEST(LincheckEdges, IntegersOf2To63OrMoreAreRejectedNotWrapped) {
  // 2^63 wrapped to -2^63 would make complete_us precede invoke_us, or an id
  // collide; each must be a clear error naming the line and the field.
  const std::string too_big = "9223372036854775808";
  const std::string base = std::string(kSetLine) + "\n";
  std::string line = R"({"id":2,"client":"c","op":"get","key":"x","invoke_us":20,"complete_us":)" + too_big +
                     R"(,"outcome":"ok","result":"a"})";
  std::string error = parse_error(base + line);
  EXPECT_NE(error.find("line 2"), std::string::npos) << error;
  EXPECT_NE(error.find("complete_us"), std::string::npos) << error;
  EXPECT_NE(error.find("2^63"), std::string::npos) << error;

  line = R"({"id":)" + too_big + R"(,"client":"c","op":"get","key":"x","invoke_us":20,"complete_us":30,"outcome":"ok","result":"a"})";
  error = parse_error(base + line);
  EXPECT_NE(error.find("line 2"), std::string::npos) << error;
  EXPECT_NE(error.find("\"id\""), std::string::npos) << error;

  line = R"({"id":2,"client":"c","op":"get","key":"x","invoke_us":18446744073709551615,"complete_us":30,"outcome":"ok","result":"a"})";
  error = parse_error(base + line);
  EXPECT_NE(error.find("invoke_us"), std::string::npos) << error;

  // The largest int64 is still accepted.
  line = R"({"id":9223372036854775807,"client":"c","op":"get","key":"x","invoke_us":20,"complete_us":30,"outcome":"ok","result":"a"})";
  History h = parse(base + line);
  ASSERT_EQ(h.ops.size(), 2u);
  EXPECT_EQ(h.ops[1].id, INT64_MAX);
}

TEST(LincheckEdges, AFieldRepeatedWithinOneLineIsRejected) {
  // With the last value winning, this get would read "a" and pass; as
  // written it also claims "b". Neither reading may be chosen silently.
  const std::string line =
      R"({"id":2,"client":"c","op":"get","key":"x","invoke_us":20,"complete_us":30,"outcome":"ok","result":"b","result":"a"})";
  const std::string error = parse_error(std::string(kSetLine) + "\n" + line);
  EXPECT_NE(error.find("line 2"), std::string::npos) << error;
  EXPECT_NE(error.find("\"result\" appears more than once"), std::string::npos) << error;
  // The same name in two different lines is of course fine.
  EXPECT_EQ(parse(std::string(kSetLine) + "\n" +
                  R"({"id":2,"client":"c","op":"get","key":"x","invoke_us":20,"complete_us":30,"outcome":"ok","result":"a"})")
                .ops.size(),
            2u);
}

// ---- part 2: the binary ----------------------------------------------------

std::string lincheck_binary() {
  if (const char* env = std::getenv("LINCHECK_BINARY"); env != nullptr && *env != '\0') return env;
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "./lincheck";
  return (self.parent_path() / "lincheck").string();
}

struct CliRun {
  int code = -1;
  std::string out;
};

// Runs lincheck with `args` (at most 30 s; killed by PID after that) and
// returns its exit code and standard output.
CliRun run_lincheck(std::vector<std::string> args) {
  TempDir dir;
  const auto out_path = dir.path() / "stdout";
  args.insert(args.begin(), lincheck_binary());
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int null = ::open("/dev/null", O_WRONLY);
    if (out >= 0) ::dup2(out, STDOUT_FILENO);
    if (null >= 0) ::dup2(null, STDERR_FILENO);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  CliRun run;
  if (pid < 0) return run;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return run;
    }
    std::this_thread::sleep_for(5ms);
  }
  run.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::ifstream in(out_path);
  run.out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return run;
}

class LincheckCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(lincheck_binary())) {
      FAIL() << "lincheck binary not found at " << lincheck_binary() << " (build target 'lincheck' or set LINCHECK_BINARY)";
    }
  }
  TempDir dir_;
};

TEST_F(LincheckCli, ADirectoryIsBadInput) {
  EXPECT_EQ(run_lincheck({dir_.path().string()}).code, 2);
  EXPECT_EQ(run_lincheck({dir_.path().string(), "--json"}).code, 2);
}

TEST_F(LincheckCli, AnEmptyHistoryIsItsOwnOutcome) {
  for (const std::string text : {"", "\n  \n"}) {
    const auto path = dir_.write("empty.jsonl", text);
    CliRun text_run = run_lincheck({path.string()});
    EXPECT_EQ(text_run.code, 4);
    EXPECT_EQ(text_run.out.rfind("empty:", 0), 0u) << text_run.out;
    CliRun json_run = run_lincheck({path.string(), "--json"});
    EXPECT_EQ(json_run.code, 4);
    const auto verdict = nlohmann::json::parse(json_run.out);
    EXPECT_EQ(verdict["verdict"], "empty");
    EXPECT_EQ(verdict["empty"], true);
  }
  // A history with one operation is not "empty".
  const auto path = dir_.write("one.jsonl", std::string(kSetLine) + "\n");
  CliRun one = run_lincheck({path.string(), "--json"});
  EXPECT_EQ(one.code, 0);
  EXPECT_EQ(nlohmann::json::parse(one.out)["empty"], false);
}

TEST_F(LincheckCli, BadIntegersAndRepeatedFieldsAreBadInput) {
  const auto big = dir_.write(
      "big.jsonl", R"({"id":1,"client":"c","op":"get","key":"x","invoke_us":0,"complete_us":9223372036854775808,"outcome":"ok","result":null})"
                   "\n");
  EXPECT_EQ(run_lincheck({big.string()}).code, 2);
  const auto twice = dir_.write(
      "twice.jsonl", R"({"id":1,"client":"c","op":"get","key":"x","invoke_us":0,"complete_us":5,"outcome":"ok","result":"a","result":null})"
                     "\n");
  EXPECT_EQ(run_lincheck({twice.string()}).code, 2);
}

// 40 concurrent writes of distinct values, then two reads that disagree:
// refuting it means trying every subset of the writes, so a small cache
// fills up long before a generous time budget runs out.
std::string hard_history_text() {
  std::string text;
  for (int i = 0; i < 40; ++i) {
    text += R"({"id":)" + std::to_string(i + 1) + R"(,"client":"c)" + std::to_string(i) +
            R"(","op":"set","key":"x","value":"v)" + std::to_string(i) +
            R"(","invoke_us":0,"complete_us":1000,"outcome":"ok"})" + "\n";
  }
  text += R"({"id":41,"client":"r","op":"get","key":"x","invoke_us":2000,"complete_us":2100,"outcome":"ok","result":"v0"})" "\n";
  text += R"({"id":42,"client":"r","op":"get","key":"x","invoke_us":2200,"complete_us":2300,"outcome":"ok","result":"v1"})" "\n";
  return text;
}

TEST_F(LincheckCli, TheMemoryCapIsReportedAsSuchNotAsTheTimeBudget) {
  const auto path = dir_.write("hard.jsonl", hard_history_text());
  CliRun json_run = run_lincheck({path.string(), "--json", "--max-memory-mb", "1", "--timeout-s", "20"});
  EXPECT_EQ(json_run.code, 3);
  const auto verdict = nlohmann::json::parse(json_run.out);
  EXPECT_EQ(verdict["verdict"], "unknown");
  EXPECT_EQ(verdict["stopped_by"], "memory budget");
  EXPECT_EQ(verdict["key_details"][0]["stopped_by"], "memory budget");
  CliRun text_run = run_lincheck({path.string(), "--max-memory-mb", "1", "--timeout-s", "20"});
  EXPECT_EQ(text_run.code, 3);
  EXPECT_NE(text_run.out.find("memory cap (1 MiB)"), std::string::npos) << text_run.out;
  EXPECT_EQ(text_run.out.find("time budget"), std::string::npos) << text_run.out;

  // And the time budget still says so.
  CliRun timed = run_lincheck({path.string(), "--json", "--timeout-s", "0.05"});
  EXPECT_EQ(timed.code, 3);
  EXPECT_EQ(nlohmann::json::parse(timed.out)["stopped_by"], "time budget");
}

TEST_F(LincheckCli, MaxMemoryIsValidated) {
  const auto path = dir_.write("one.jsonl", std::string(kSetLine) + "\n");
  EXPECT_EQ(run_lincheck({path.string(), "--max-memory-mb", "0"}).code, 2);
  EXPECT_EQ(run_lincheck({path.string(), "--max-memory-mb", "lots"}).code, 2);
}

}  // namespace
