/**
 * Counts passing data cases per named set, and prints "<suite> <set>: P/T passed" lines after
 * the suite runs, so a conformance run shows how much of each data set passed.
 */
import type { Test } from 'uvu';

export class CaseCounter {
  private readonly totals = new Map<string, { passed: number; total: number }>();

  constructor(private readonly title: string) {}

  /** Register one data case as its own uvu test, counted under `set`. */
  add(suite: Test, set: string, name: string, fn: () => void | Promise<void>): void {
    const slot = this.slot(set);
    slot.total++;
    suite(`${set}: ${name}`, async () => {
      await fn();
      slot.passed++;
    });
  }

  private slot(set: string) {
    let s = this.totals.get(set);
    if (!s) this.totals.set(set, (s = { passed: 0, total: 0 }));
    return s;
  }

  /** Print the per-set counts (call from suite.after). */
  report(): void {
    for (const [set, { passed, total }] of this.totals) {
      console.log(`${this.title} ${set}: ${passed}/${total} passed`);
    }
  }
}
