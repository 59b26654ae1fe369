/**
 * Build progress for people. On a TTY one line per step is redrawn in place
 * (step counter, name, a counter or bar for downloads and packing); in a
 * pipe or CI log each step prints a start and an end line, nothing redrawn.
 * The full story always goes to the build log, not here.
 */

export interface BuildProgress {
  step(index: number, total: number, name: string): void;
  /** Work done in the current step, e.g. 12 of 70 packages. */
  count(done: number, total: number, unit: string): void;
  /** A short line about what the step is doing now (a package name). */
  detail(text: string): void;
  stepDone(ms: number): void;
  stepFailed(ms: number): void;
}

export const silentProgress: BuildProgress = {
  step: () => {},
  count: () => {},
  detail: () => {},
  stepDone: () => {},
  stepFailed: () => {},
};

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function bar(done: number, total: number, width = 24): string {
  const filled = total > 0 ? Math.round((Math.min(done, total) / total) * width) : 0;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

export class TtyProgress implements BuildProgress {
  private head = '';
  private tail = '';
  private lastDraw = 0;

  constructor(private readonly out: NodeJS.WriteStream) {}

  step(index: number, total: number, name: string): void {
    this.head = `[${index}/${total}] ${name}`;
    this.tail = '';
    this.draw(true);
  }

  count(done: number, total: number, unit: string): void {
    this.tail = `${bar(done, total)} ${done}/${total} ${unit}`;
    this.draw(done === total);
  }

  detail(text: string): void {
    this.tail = text;
    this.draw(false);
  }

  stepDone(ms: number): void {
    this.out.write(`\r\x1b[K${this.head} done (${seconds(ms)})\n`);
  }

  stepFailed(ms: number): void {
    this.out.write(`\r\x1b[K${this.head} FAILED after ${seconds(ms)}\n`);
  }

  private draw(force: boolean): void {
    const now = Date.now();
    if (!force && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    const cols = this.out.columns > 20 ? this.out.columns : 80;
    const line = this.tail === '' ? this.head : `${this.head}  ${this.tail}`;
    this.out.write(`\r\x1b[K${line.length >= cols ? `${line.slice(0, cols - 2)}…` : line}`);
  }
}

export class LineProgress implements BuildProgress {
  private head = '';
  constructor(private readonly write: (line: string) => void) {}

  step(index: number, total: number, name: string): void {
    this.head = `[${index}/${total}] ${name}`;
    this.write(`${this.head} ...`);
  }

  count(done: number, total: number, unit: string): void {
    if (done === total) this.write(`${this.head}: ${done}/${total} ${unit}`);
  }

  detail(): void {}

  stepDone(ms: number): void {
    this.write(`${this.head} done (${seconds(ms)})`);
  }

  stepFailed(ms: number): void {
    this.write(`${this.head} FAILED after ${seconds(ms)}`);
  }
}
