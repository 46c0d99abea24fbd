// wordcount-report FILE... — the wordcount plugin's report computed on the
// host, without a sandbox: the same counting (count.h) and the same lines.
// It makes examples/texts/expected_top10.out:
//   wordcount-report examples/texts/*.txt > examples/texts/expected_top10.out
// The order of the files does not change the report (counts are sums, and
// ties are broken by the word itself).
#include <cstdio>
#include <fstream>
#include <sstream>

#include "workers/examples/wordcount/count.h"

int main(int argc, char** argv) {
  capsa::examples::WordFrequencies freq;
  for (int i = 1; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "wordcount-report: cannot read %s\n", argv[i]);
      return 1;
    }
    std::stringstream text;
    text << in.rdbuf();
    freq.add_text(text.str());
  }
  for (const auto& line :
       capsa::examples::report_lines(freq, static_cast<std::size_t>(argc - 1))) {
    std::printf("%s\n", line.c_str());
  }
  return 0;
}
