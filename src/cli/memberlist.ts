// `metallb memberlist agent`: one gossip member on its own, like `serf agent`: join a MetalLB (or
// metallb-ts, or serf) cluster, print membership events as JSON lines, answer commands on stdin.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { createLogger, isLogLevel, type LogLevel } from '../log.js';
import { PRESETS, type PresetName, applyMemberlistConfigJson } from '../speaker/memberlist/config.js';
import { Memberlist, type Member } from '../speaker/memberlist/memberlist.js';
import { metallbKey } from '../speaker/memberlist/security.js';
import { ML_SECRET_KEY_NAME, parseDelegateVersion } from '../speaker/memberlist/metallb.js';
import { join } from 'node:path';

interface AgentOptions {
  name: string;
  bind: string;
  advertise?: string;
  join: string[];
  secret?: string;
  secretKeyPath?: string;
  key: string[];
  preset: string;
  configJson?: string;
  delegateVersion?: string;
  label?: string;
  logLevel: string;
  leaveTimeout: string;
  inProcess?: boolean;
}

const collect = (v: string, prev: string[]): string[] => [...prev, ...v.split(',').filter(Boolean)];

function splitAddr(s: string, what: string): [string, number] {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]+):(\d+)$/.exec(s);
  if (m) return [m[1]!, Number(m[2])];
  if (!s.includes(':') || s.split(':').length > 2) return [s, 7946];
  throw new Error(`${what}: expected IP or IP:PORT, got "${s}"`);
}

const line = (o: object): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
const show = (m: Member): object => ({ name: m.name, addr: m.addr, port: m.port, state: m.state, incarnation: m.incarnation, meta: m.meta.toString('base64') });

export function registerMemberlist(program: Command): void {
  const ml = program.command('memberlist').description('hashicorp/memberlist gossip, as MetalLB speakers speak it');
  ml.command('agent')
    .description('run one gossip member: print membership events as JSON lines; stdin commands: members, counters, join ADDR..., leave [MS], busy MS (block the main thread), quit')
    .requiredOption('--name <name>', 'member name (MetalLB: the node name)')
    .requiredOption('--bind <ip[:port]>', 'address to listen on (UDP and TCP; default port 7946)')
    .option('--advertise <ip[:port]>', 'address other members reach us at (default: --bind)')
    .option('--join <addr>', 'member to join through (repeatable or comma-separated)', collect, [])
    .option('--secret <string>', "MetalLB memberlist secret (the Secret's secretkey); the key is derived as MetalLB does")
    .option('--secret-key-path <dir>', `directory holding ${ML_SECRET_KEY_NAME} (MetalLB's --ml-secret-key-path)`)
    .option('--key <base64>', 'raw 16/24/32-byte key, base64 as serf -encrypt takes it (repeatable: a keyring, first is primary)', collect, [])
    .option('--preset <name>', `timing preset: ${Object.keys(PRESETS).join(', ')}`, 'fast')
    .option('--config-json <file>', "memberlist config.json (MetalLB's metallb-memberlist-config) over the preset")
    .option('--delegate-version <min,max,cur>', 'delegate protocol versions to advertise (serf: 2,5,5); default 0,0,0 like MetalLB')
    .option('--label <label>', 'memberlist label (must match on every member)')
    .option('--log-level <level>', 'all, debug, info, warn, error, none', 'info')
    .option('--leave-timeout <ms>', 'on SIGTERM/SIGINT/quit: leave, waiting at most this long, then exit', '1000')
    .option('--in-process', 'run the protocol on the main thread instead of a worker thread')
    .action(async (o: AgentOptions) => {
      if (!isLogLevel(o.logLevel)) throw new Error(`--log-level: unknown level "${o.logLevel}"`);
      const log = createLogger('memberlist', o.logLevel as LogLevel);
      if (!(o.preset in PRESETS)) throw new Error(`--preset: one of ${Object.keys(PRESETS).join(', ')}`);
      let timing = { ...PRESETS[o.preset as PresetName] };
      if (o.configJson) timing = applyMemberlistConfigJson(timing, readFileSync(o.configJson, 'utf8'));
      const keys: Uint8Array[] = [];
      if (o.secret !== undefined) keys.push(metallbKey(o.secret));
      if (o.secretKeyPath) keys.push(metallbKey(readFileSync(join(o.secretKeyPath, ML_SECRET_KEY_NAME))));
      for (const k of o.key) keys.push(Buffer.from(k, 'base64'));
      let delegateVersion;
      // Thrown from the action, a plain Error is printed by main(); commander's own errors are not.
      if (o.delegateVersion) delegateVersion = parseDelegateVersion(o.delegateVersion, '--delegate-version');
      const [bindAddr, bindPort] = splitAddr(o.bind, '--bind');
      const adv = o.advertise ? splitAddr(o.advertise, '--advertise') : undefined;
      const levels = (['debug', 'info', 'warn', 'error'] as const).filter((l) => log.isLevelEnabled(l));
      const m = await Memberlist.create({
        name: o.name, bindAddr, bindPort, advertiseAddr: adv?.[0], advertisePort: adv?.[1], secretKeys: keys,
        label: o.label, timing, delegateVersion, logger: log, logLevels: [...levels], inProcess: o.inProcess,
      });
      for (const ev of ['join', 'leave', 'update', 'suspect'] as const) m.on(ev, (member) => line({ event: ev, t: Date.now(), member: show(member) }));
      if (o.join.length > 0) line({ joined: await m.join(o.join), of: o.join.length });
      line({ ready: true, name: o.name, port: m.port });
      let stopping = false;
      const stop = async (): Promise<void> => {
        if (stopping) return;
        stopping = true;
        try {
          await m.leave(Number(o.leaveTimeout));
        } finally {
          await m.shutdown();
          line({ stopped: true });
          process.exit(0);
        }
      };
      process.on('SIGTERM', () => void stop());
      process.on('SIGINT', () => void stop());
      const rl = createInterface({ input: process.stdin });
      rl.on('line', async (input) => {
        const [cmd, ...args] = input.trim().split(/\s+/);
        try {
          if (cmd === 'members') line({ members: (await m.members()).map(show) });
          else if (cmd === 'counters') line({ counters: await m.counters(), health: await m.healthScore() });
          else if (cmd === 'join') line({ joined: await m.join(args), of: args.length });
          else if (cmd === 'leave') {
            const t0 = Date.now();
            await m.leave(Number(args[0] ?? o.leaveTimeout));
            line({ left: true, ms: Date.now() - t0 });
          } else if (cmd === 'busy') {
            // Diagnostic: hold this process's main thread, as a busy speaker would.
            const until = performance.now() + Number(args[0] ?? 100);
            while (performance.now() < until) {
              // spin
            }
            line({ busy: Number(args[0] ?? 100) });
          } else if (cmd === 'quit') await stop();
          else if (cmd) line({ error: `unknown command "${cmd}"` });
        } catch (err) {
          line({ error: (err as Error).message });
        }
      });
    });
}
