/**
 * Structured logging for the bundled Lambda handlers: one JSON object per line on stdout.
 *
 * Why not Powertools for AWS Lambda: the handlers need three things (a JSON log line, an EMF block, a
 * request id), which are a few lines each; Powertools' logger and metrics add about 100 KB and a
 * measurable cold-load cost to every bundle (docs/BENCHMARKS.md) for features the handlers do not use.
 * Lines are written with `process.stdout.write`, not `console.log`, so the Lambda runtime does not prefix
 * them and CloudWatch Logs sees pure JSON (which Logs Insights parses and EMF requires).
 */

export type LogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

const LEVELS: Record<LogLevel, number> = { DEBUG: 10, INFO: 20, WARN: 30, ERROR: 40 };

/** Where log lines go; tests replace it to read what a handler logged. */
export let writeLine: (line: string) => void = line => {
  process.stdout.write(`${line}\n`);
};

/** Replace the line writer (tests only); returns the previous one. */
export function setLineWriter(writer: (line: string) => void): (line: string) => void {
  const previous = writeLine;
  writeLine = writer;
  return previous;
}

function threshold(): number {
  const level = (process.env.LOG_LEVEL ?? 'INFO').toUpperCase() as LogLevel;
  return LEVELS[level] ?? LEVELS.INFO;
}

/**
 * Log one event with its fields. Every field that holds an `Error` (`error`, `sendError`, ...) is reduced to its
 * name and message: JSON would write an `Error` as `{}`, losing the reason, and a stack may carry secrets.
 */
export function log(level: LogLevel, message: string, fields: Record<string, unknown> = {}): void {
  if (LEVELS[level] < threshold()) {
    return;
  }
  const entry: Record<string, unknown> = { level, message, timestamp: new Date().toISOString(), ...fields };
  for (const [name, value] of Object.entries(fields)) {
    if (value instanceof Error) {
      entry[name] = { name: value.name, message: value.message };
    }
  }
  writeLine(JSON.stringify(entry));
}
