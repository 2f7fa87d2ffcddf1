#include "transcript.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace transcript {

// ------------------------------------------------------------- parsing ----

static std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::string line;
  std::istringstream in(text);
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

static bool blank(const std::string& line) {
  return line.find_first_not_of(" \t") == std::string::npos;
}

File parse(const std::string& text, const std::string& path) {
  const std::vector<std::string> lines = split_lines(text);
  File file;
  std::vector<std::string> pending;  // prelude of the next command
  std::size_t i = 0;
  while (i < lines.size()) {
    const std::string& line = lines[i];
    if (blank(line) || line[0] == '#') {
      pending.push_back(line);
      ++i;
      continue;
    }
    Command c;
    c.prelude = std::move(pending);
    pending.clear();
    c.line = static_cast<int>(i) + 1;
    c.text = line;
    ++i;
    if (i >= lines.size() || lines[i] != "----")
      throw std::runtime_error(path + ":" + std::to_string(c.line) + ": expected \"----\" after the command");
    ++i;
    // The output runs to the next blank line, which ends the command and
    // belongs to neither it nor the next one.
    while (i < lines.size() && !blank(lines[i])) c.expected.push_back(lines[i++]);
    if (i < lines.size()) ++i;
    file.commands.push_back(std::move(c));
  }
  file.epilogue = std::move(pending);
  return file;
}

std::string render(const File& file) {
  std::string out;
  for (std::size_t k = 0; k < file.commands.size(); ++k) {
    const Command& c = file.commands[k];
    for (const std::string& line : c.prelude) out += line + "\n";
    out += c.text + "\n----\n";
    for (const std::string& line : c.expected) out += line + "\n";
    // The terminating blank line, except at the very end of the file.
    if (k + 1 < file.commands.size() || !file.epilogue.empty()) out += "\n";
  }
  for (const std::string& line : file.epilogue) out += line + "\n";
  return out;
}

// ---------------------------------------------------------------- diff ----

std::string diff(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  // Longest common subsequence: outputs are at most a few hundred lines.
  const std::size_t n = a.size(), m = b.size();
  std::vector<std::vector<int>> lcs(n + 1, std::vector<int>(m + 1, 0));
  for (std::size_t i = n; i-- > 0;)
    for (std::size_t j = m; j-- > 0;)
      lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
  struct Line {
    char op;
    std::string text;
    std::size_t ai, bi;  // 1-based positions of the line (or of the next one) in a and b
  };
  std::vector<Line> script;
  std::size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] == b[j]) {
      script.push_back({' ', a[i], i + 1, j + 1});
      ++i, ++j;
    } else if (i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1])) {
      script.push_back({'-', a[i], i + 1, j + 1});  // deletions first, as diff -u prints them
      ++i;
    } else {
      script.push_back({'+', b[j], i + 1, j + 1});
      ++j;
    }
  }
  std::string out = "--- expected\n+++ produced\n";
  const std::size_t context = 3;
  for (std::size_t k = 0; k < script.size();) {
    if (script[k].op == ' ') {
      ++k;
      continue;
    }
    // A hunk: from `context` lines before this change to `context` lines
    // after the last change that is within 2 * context of the previous one.
    std::size_t begin = k >= context ? k - context : 0;
    std::size_t end = k;
    for (std::size_t q = k; q < script.size() && q <= end + 2 * context; ++q)
      if (script[q].op != ' ') end = q;
    end = std::min(script.size(), end + context + 1);
    std::size_t a_count = 0, b_count = 0;
    for (std::size_t q = begin; q < end; ++q) {
      if (script[q].op != '+') ++a_count;
      if (script[q].op != '-') ++b_count;
    }
    out += "@@ -" + std::to_string(script[begin].ai) + "," + std::to_string(a_count) + " +" +
           std::to_string(script[begin].bi) + "," + std::to_string(b_count) + " @@\n";
    for (std::size_t q = begin; q < end; ++q) out += std::string(1, script[q].op) + script[q].text + "\n";
    k = end;
  }
  return out;
}

// ------------------------------------------------------------- running ----

Outcome run_file(const std::string& path, bool rewrite, bool verbose, std::ostream& report) {
  Outcome outcome;
  std::ifstream in(path);
  if (!in) {
    report << path << ": cannot read\n";
    outcome.ok = false;
    outcome.error = true;
    return outcome;
  }
  std::stringstream text;
  text << in.rdbuf();
  const std::string original = text.str();
  File file;
  try {
    file = parse(original, path);
  } catch (const std::exception& e) {
    report << e.what() << "\n";
    outcome.ok = false;
    outcome.error = true;
    return outcome;
  }

  Runner runner;
  for (Command& c : file.commands) {
    std::vector<std::string> produced;
    try {
      produced = runner.run(c.text);
    } catch (const std::exception& e) {
      report << path << ":" << c.line << ": " << c.text << "\n  error: " << e.what() << "\n";
      outcome.ok = false;
      outcome.error = true;
      return outcome;  // never rewrite a file whose commands do not run
    }
    if (produced.empty()) produced.push_back("ok");  // an empty block would end the output early
    ++outcome.commands;
    if (verbose) {
      report << path << ":" << c.line << ": " << c.text << "\n";
      for (const std::string& line : produced) report << "  " << line << "\n";
    }
    if (rewrite) {
      c.expected = std::move(produced);
      continue;
    }
    if (produced != c.expected) {
      // Later commands run on a cluster whose history already differs:
      // their diffs would be noise, so the first mismatch is the report.
      report << path << ":" << c.line << ": output of `" << c.text << "` differs\n" << diff(c.expected, produced);
      outcome.ok = false;
      return outcome;
    }
  }
  if (rewrite) {
    std::string updated = render(file);
    if (updated != original) {
      std::ofstream outf(path, std::ios::trunc);
      outf << updated;
      if (!outf) {
        report << path << ": cannot write\n";
        outcome.ok = false;
        outcome.error = true;
        return outcome;
      }
      report << "rewrote " << path << "\n";
    }
  }
  return outcome;
}

}  // namespace transcript
