// The test side of announcer-host.ts (the layer 2 announcer in a node namespace): starting it, its JSON-lines calls
// and its log, the node-client LAN addresses the tests give it, and polling until a condition holds.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JsonLines, type Netns } from '../../helpers/netns.js';

const HOST = join(dirname(fileURLToPath(import.meta.url)), 'announcer-host.ts');

type Reply = { id?: number; ok?: boolean; result?: unknown; error?: string; event?: string };

export class AnnouncerHost {
  private id = 0;
  constructor(readonly lines: JsonLines<Reply>) {}

  /** What the host wrote to stderr so far: the announcer's JSON log. */
  stderr(): string {
    return this.lines.stderr;
  }

  async call<T = unknown>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.id;
    this.lines.send({ id, op, ...args });
    const r = await this.lines.next((l) => l.id === id);
    if (!r.ok) throw new Error(`${op}: ${r.error}`);
    return r.result as T;
  }
}

/**
 * announcer-host.ts in `ns` with `options` (its JSON argument), run under `prefix` when given (setpriv, to drop
 * capabilities); resolves once it is ready. The Netns kills it at cleanup.
 */
export async function startAnnouncerHost(lab: Netns, ns: string, options: Record<string, unknown>, prefix: readonly string[] = []): Promise<AnnouncerHost> {
  const [cmd, ...args] = [...prefix, process.execPath, '--import', 'tsx', HOST, JSON.stringify(options)];
  const lines = new JsonLines<Reply>(lab.spawn(ns, cmd!, args));
  await lines.next((l) => l.event === 'ready');
  return new AnnouncerHost(lines);
}

/**
 * One LAN between the node and the client: `${v4}.1/24` and `${v6}::1/64` on the node's end, `.100` / `::100` on the
 * client's (IPv6 without DAD, so usable at once), both ends up.
 */
export function lanAddresses(lab: Netns, node: { ns: string; ifname: string }, client: { ns: string; ifname: string }, v4: string, v6: string): void {
  for (const [end, host] of [[node, '1'], [client, '100']] as const) {
    lab.ip(end.ns, 'addr', 'add', `${v4}.${host}/24`, 'dev', end.ifname);
    lab.ip(end.ns, 'addr', 'add', `${v6}::${host}/64`, 'dev', end.ifname, 'nodad');
    lab.ip(end.ns, 'link', 'set', end.ifname, 'up');
  }
}

/** `fn` every 200 ms until `ok` holds; fails naming `what` and the last value after `timeoutMs`. */
export async function eventually<T>(what: string, fn: () => T | Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const last = await fn();
    if (ok(last)) return last;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(last)} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
