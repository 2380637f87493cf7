// Prints the closing "N passed, N failed[, N skipped]" line from vitest's JSON report.
import { readFileSync } from 'node:fs';

const [file, status] = process.argv.slice(2);
let r;
try {
  r = JSON.parse(readFileSync(file, 'utf8'));
} catch {
  console.log(`ci: no test report (vitest exit ${status})`);
  console.log('0 passed, 1 failed');
  process.exit(0);
}
const failedSuites = (r.testResults ?? []).filter((f) => f.status === 'failed' && !(f.assertionResults ?? []).some((a) => a.status === 'failed'));
for (const f of failedSuites) console.log(`ci: suite failed to run: ${f.name}: ${(f.message ?? '').split('\n')[0]}`);
const failed = r.numFailedTests + failedSuites.length;
const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
console.log(`${r.numPassedTests} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
