// --data-file: the whole store as JSON, written atomically (tmp file + rename), debounced; flushed on shutdown.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import type { Snapshot, Store } from './store.js';
import { isObj } from './util.js';

export function loadSnapshot(file: string): Snapshot | undefined {
  if (!existsSync(file)) return undefined;
  const text = readFileSync(file, 'utf8');
  if (text.trim() === '') return undefined;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new Error(`data file ${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObj(data) || typeof data.resourceVersion !== 'number' || !isObj(data.objects)) throw new Error(`data file ${file} is not a dev-apiserver data file`);
  return data as unknown as Snapshot;
}

/** The debounce is at least this many times the last write's cost: writing takes at most 1/20 of the time. */
const PERSIST_COST_FACTOR = 20;

export class Persister {
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private dirty = false;
  private seq = 0;
  /** How long the last write kept the event loop (snapshot and JSON), in ms. */
  private lastCostMs = 0;

  constructor(
    private readonly file: string,
    private readonly store: Store,
    private readonly debounceMs = 500,
    private readonly onError: (e: unknown) => void = () => {},
  ) {}

  /**
   * Note a change; a write happens at most every debounceMs, and at most one twentieth of the time goes to writing:
   * the whole store is written each time, and in a lab with a thousand Services (8 MB of JSON, ~100 ms a write) the
   * leases renewed every few seconds kept it writing twice a second, a quarter of a core taken from the nodes.
   */
  changed(): void {
    this.dirty = true;
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.writeNow();
    }, Math.max(this.debounceMs, PERSIST_COST_FACTOR * this.lastCostMs));
  }

  private async writeNow(): Promise<void> {
    if (this.writing) {
      await this.writing;
      if (this.dirty) this.changed();
      return;
    }
    this.dirty = false;
    const started = performance.now();
    const text = JSON.stringify(this.store.snapshot(Math.min(2000, this.store.historySize)));
    this.lastCostMs = performance.now() - started;
    const tmp = `${this.file}.tmp-${process.pid}-${++this.seq}`;
    this.writing = (async () => {
      try {
        await writeFile(tmp, text);
        await rename(tmp, this.file);
      } catch (e) {
        this.onError(e);
      }
    })();
    await this.writing;
    this.writing = undefined;
  }

  /** Synchronous final write (shutdown). */
  flushSync(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const tmp = `${this.file}.tmp-${process.pid}-final`;
    writeFileSync(tmp, JSON.stringify(this.store.snapshot(Math.min(2000, this.store.historySize))));
    renameSync(tmp, this.file);
    this.dirty = false;
  }

  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.writing) await this.writing;
    this.dirty = true;
    await this.writeNow();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
