// Container logs in the CRI format the kubelet reads (`<RFC3339Nano> <stream> <P|F> <text>` a line, P for a line cut
// at 16 KiB), one file per container instance (`<restartCount>.log`), rotated once at a size limit; and the reader
// behind `/containerLogs` (tailLines, sinceSeconds/sinceTime, limitBytes, timestamps, follow).
import { createWriteStream, existsSync, openSync, closeSync, readSync, renameSync, statSync, type WriteStream } from 'node:fs';
import type { Readable } from 'node:stream';

const MAX_LINE = 16 * 1024;

// Wall clock with sub-millisecond resolution: the epoch at start plus the monotonic clock since.
const EPOCH_NS = BigInt(Date.now()) * 1_000_000n;
const HR0 = process.hrtime.bigint();
export const nowNs = (): bigint => EPOCH_NS + (process.hrtime.bigint() - HR0);

/** Go's time.RFC3339Nano in UTC: fractional seconds without trailing zeros. */
export function rfc3339Nano(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const iso = new Date(ms).toISOString(); // 2024-01-02T03:04:05.678Z
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${iso.slice(0, 19)}${frac ? `.${frac}` : ''}Z`;
}

/** Parses RFC 3339 with up to 9 fractional digits to ns since the epoch. */
export function parseTimestampNs(s: string): bigint | undefined {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(s);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms)) return undefined;
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0') || '0');
}

export class ContainerLogWriter {
  private out: WriteStream;
  private bytes = 0;
  private open = 0;
  private closed = false;

  constructor(
    readonly path: string,
    private readonly maxBytes = 10 * 1024 * 1024,
  ) {
    this.out = createWriteStream(path, { flags: 'a', mode: 0o640 });
    this.out.on('error', () => {});
    try {
      this.bytes = statSync(path).size;
    } catch {
      this.bytes = 0;
    }
  }

  /** Copies a stream into the file, line by line. */
  attach(stream: Readable, name: 'stdout' | 'stderr'): void {
    this.open++;
    let pending: Buffer = Buffer.alloc(0);
    stream.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let nl: number;
      while ((nl = pending.indexOf(10)) >= 0) {
        this.record(name, 'F', pending.subarray(0, nl));
        pending = pending.subarray(nl + 1);
      }
      while (pending.length >= MAX_LINE) {
        this.record(name, 'P', pending.subarray(0, MAX_LINE));
        pending = pending.subarray(MAX_LINE);
      }
    });
    const done = (): void => {
      if (pending.length > 0) this.record(name, 'F', pending);
      pending = Buffer.alloc(0);
      this.open--;
    };
    stream.once('end', done);
    stream.once('error', () => {});
  }

  /** A line written by the kubelet itself (e.g. why a container could not start). */
  note(name: 'stdout' | 'stderr', text: string): void {
    for (const line of text.split('\n')) this.record(name, 'F', Buffer.from(line));
  }

  private record(stream: string, tag: 'P' | 'F', content: Buffer): void {
    if (this.closed) return;
    const head = Buffer.from(`${rfc3339Nano(nowNs())} ${stream} ${tag} `);
    const rec = Buffer.concat([head, content, Buffer.from('\n')]);
    this.out.write(rec);
    this.bytes += rec.length;
    if (this.bytes > this.maxBytes) this.rotate();
  }

  private rotate(): void {
    const old = this.out;
    old.end();
    try {
      renameSync(this.path, `${this.path}.1`);
    } catch {
      /* keep appending */
    }
    this.out = createWriteStream(this.path, { flags: 'a', mode: 0o640 });
    this.out.on('error', () => {});
    this.bytes = 0;
  }

  /** Flushes and closes the file. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve) => this.out.end(() => resolve()));
  }
}

export interface LogRecord {
  ts: string;
  tsNs: bigint;
  stream: string;
  /** A full line (partial records already joined). */
  text: string;
}

/** Parses CRI log text into full lines; a trailing record without newline is kept back (returned as `rest`). */
export function parseCriLog(text: string, carry: { partial?: LogRecord } = {}): { records: LogRecord[]; rest: string } {
  const out: LogRecord[] = [];
  let start = 0;
  let nl: number;
  while ((nl = text.indexOf('\n', start)) >= 0) {
    const line = text.slice(start, nl);
    start = nl + 1;
    const a = line.indexOf(' ');
    const b = line.indexOf(' ', a + 1);
    const c = line.indexOf(' ', b + 1);
    if (a < 0 || b < 0) continue;
    const ts = line.slice(0, a);
    const stream = line.slice(a + 1, b);
    const tag = c < 0 ? line.slice(b + 1) : line.slice(b + 1, c);
    const content = c < 0 ? '' : line.slice(c + 1);
    const tsNs = parseTimestampNs(ts) ?? 0n;
    if (tag === 'P') {
      if (carry.partial && carry.partial.stream === stream) carry.partial.text += content;
      else carry.partial = { ts, tsNs, stream, text: content };
      continue;
    }
    if (carry.partial && carry.partial.stream === stream) {
      out.push({ ...carry.partial, text: carry.partial.text + content });
      carry.partial = undefined;
    } else {
      out.push({ ts, tsNs, stream, text: content });
    }
  }
  return { records: out, rest: text.slice(start) };
}

export interface LogQuery {
  tailLines?: number;
  sinceNs?: bigint;
  limitBytes?: number;
  timestamps?: boolean;
}

export const formatRecord = (r: LogRecord, timestamps: boolean): string => `${timestamps ? `${rfc3339Nano(r.tsNs)} ` : ''}${r.text}\n`;

/**
 * Reads `path` (and its rotated `.1` first) and returns the selected output, the byte offset in `path` read up to
 * (the end of its last complete line, for a follower to continue from) and a partial line carried over.
 */
export function readLogFile(path: string, q: LogQuery): { text: string; offset: number; carry: { partial?: LogRecord } } {
  let raw = '';
  if (existsSync(`${path}.1`)) raw += completeLines(readWhole(`${path}.1`)).toString('utf8');
  const cur = existsSync(path) ? completeLines(readWhole(path)) : Buffer.alloc(0);
  raw += cur.toString('utf8');
  const carry: { partial?: LogRecord } = {};
  const { records } = parseCriLog(raw, carry);
  let sel = q.sinceNs !== undefined ? records.filter((r) => r.tsNs >= q.sinceNs!) : records;
  if (q.tailLines !== undefined) sel = q.tailLines <= 0 ? [] : sel.slice(-q.tailLines);
  const text = sel.map((r) => formatRecord(r, q.timestamps === true)).join('');
  return { text, offset: cur.length, carry };
}

/** The bytes up to and including the last newline. */
export function completeLines(b: Buffer): Buffer {
  const nl = b.lastIndexOf(10);
  return nl < 0 ? Buffer.alloc(0) : b.subarray(0, nl + 1);
}

function readWhole(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const size = statSync(path).size;
    const buf = Buffer.alloc(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, buf, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}

/** Reads bytes [offset, end) of a file; a file smaller than `offset` was rotated and is read from its start. */
export function readFrom(path: string, offset: number): { data: Buffer; offset: number; rotated: boolean } {
  if (!existsSync(path)) return { data: Buffer.alloc(0), offset, rotated: false };
  const size = statSync(path).size;
  if (size < offset) return { ...readFrom(path, 0), rotated: true };
  if (size === offset) return { data: Buffer.alloc(0), offset, rotated: false };
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(size - offset);
    const n = readSync(fd, buf, 0, buf.length, offset);
    return { data: buf.subarray(0, n), offset: offset + n, rotated: false };
  } finally {
    closeSync(fd);
  }
}
