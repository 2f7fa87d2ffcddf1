// Transcript files: commands, each followed by the output it must produce
// (the format is described in tests/raft/README.md). This header parses a
// file, runs it against a fresh Cluster, diffs and renders it back.
#pragma once

#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace transcript {

struct Command {
  std::vector<std::string> prelude;  // comment and blank lines before the command, verbatim
  int line = 0;                      // 1-based line of the command in its file
  std::string text;                  // the command line
  std::vector<std::string> expected; // the lines between "----" and the next blank line
};

struct File {
  std::vector<Command> commands;
  std::vector<std::string> epilogue;  // comment or blank lines after the last command
};

// Throws std::runtime_error("path:line: why") on a malformed file.
File parse(const std::string& text, const std::string& path);
// The file text with each command's expected output; parse(render(f)) == f.
std::string render(const File& file);

// Runs the commands of one transcript, in order, against one Cluster
// (commands.cc). run() returns the command's output lines and throws
// std::runtime_error on a malformed or impossible command.
class Runner {
 public:
  Runner();
  ~Runner();
  std::vector<std::string> run(const std::string& command);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// A unified-style diff (hunks with 3 lines of context) of two outputs.
std::string diff(const std::vector<std::string>& expected, const std::vector<std::string>& actual);

struct Outcome {
  int commands = 0;   // commands run
  bool ok = true;     // every output matched (or the file was rewritten)
  bool error = false; // the file or a command was malformed
};

// Runs the file at `path`. Without `rewrite`, stops at the first command
// whose output differs and reports it (file:line, the command, a diff) on
// `report`; with `rewrite`, runs every command and writes the produced
// outputs back into the file. `verbose` echoes each command and its output.
Outcome run_file(const std::string& path, bool rewrite, bool verbose, std::ostream& report);

}  // namespace transcript
