// Prints one plain closing line, "tests: N passed, N failed, N skipped", after jest's own summary, so any
// CI log reader can count results without knowing jest's format. Suites that failed to run count as failed.
class SummaryReporter {
  onRunComplete(_contexts, r) {
    const failed = r.numFailedTests + r.numRuntimeErrorTestSuites;
    process.stdout.write(`\ntests: ${r.numPassedTests} passed, ${failed} failed, ${r.numPendingTests + r.numTodoTests} skipped\n`);
  }
}
module.exports = SummaryReporter;
