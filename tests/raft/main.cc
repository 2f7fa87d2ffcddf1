// raft_transcripts [--dir DIR] [FILE...] [--rewrite] [--verbose]
//
// Runs transcript tests of the Raft core (tests/raft/README.md): every
// DIR/*.txt, or the FILEs named (a bare name is looked up in DIR too).
// Exit status: 0 all matched, 1 some output differed, 2 a file or command
// was malformed or the usage was wrong.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "transcript.h"

namespace fs = std::filesystem;

static int usage(std::ostream& out, int status) {
  out << "usage: raft_transcripts [--dir DIR] [FILE...] [--rewrite] [--verbose]\n"
         "  runs each transcript and compares every command's output with the one written\n"
         "  beneath it; --rewrite writes the produced outputs into the files instead.\n";
  return status;
}

int main(int argc, char** argv) {
  std::string dir;
  std::vector<std::string> names;
  bool rewrite = false;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--dir" && i + 1 < argc) dir = argv[++i];
    else if (arg == "--rewrite") rewrite = true;
    else if (arg == "--verbose" || arg == "-v") verbose = true;
    else if (arg == "--help" || arg == "-h") return usage(std::cout, 0);
    else if (!arg.empty() && arg[0] == '-') return usage(std::cerr, 2);
    else names.push_back(arg);
  }

  std::vector<std::string> files;
  for (const std::string& name : names) {
    if (!fs::exists(name) && !dir.empty() && fs::exists(fs::path(dir) / name)) {
      files.push_back((fs::path(dir) / name).string());
    } else {
      files.push_back(name);
    }
  }
  if (names.empty()) {
    if (dir.empty()) return usage(std::cerr, 2);
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec))
      if (entry.is_regular_file() && entry.path().extension() == ".txt") files.push_back(entry.path().string());
    if (ec) {
      std::cerr << dir << ": " << ec.message() << "\n";
      return 2;
    }
    std::sort(files.begin(), files.end());  // a stable order for the report
    if (files.empty()) {
      std::cerr << dir << ": no *.txt transcripts\n";
      return 2;
    }
  }

  const auto start = std::chrono::steady_clock::now();
  int failed = 0;
  int commands = 0;
  bool error = false;
  for (const std::string& file : files) {
    transcript::Outcome o = transcript::run_file(file, rewrite, verbose, std::cerr);
    commands += o.commands;
    if (!o.ok) ++failed;
    error = error || o.error;
  }
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  std::cout << "raft_transcripts: " << files.size() << " files, " << commands << " commands, "
            << (failed == 0 ? std::string(rewrite ? "rewritten" : "all passed")
                            : std::to_string(failed) + " failed")
            << " (" << ms << " ms)\n";
  if (error) return 2;
  return failed == 0 ? 0 : 1;
}
