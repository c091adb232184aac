// The lab's image table. There is no registry: an image reference is matched by repository (whatever the registry
// and tag) against the built-in images, and a container's command line is resolved the way a runtime combines the
// image's ENTRYPOINT/CMD with the manifest's `command`/`args`. Pure; the kubelet turns a resolution into a process.

export type BuiltinProgram = 'nginx' | 'echo-hname' | 'echo-ip';

export interface ImageRef {
  /** As written in the manifest. */
  raw: string;
  /** `docker.io/library/nginx:latest`: the normalized name a runtime reports as the container's image. */
  canonical: string;
  /** Repository path without registry and `library/`: `nginx`, `metallb/speaker`. */
  repository: string;
  tag: string;
  digest?: string;
}

export interface ImageSpec {
  /** What the Event lists: `nginx`, `quay.io/metallb/speaker`. */
  display: string;
  description: string;
  entrypoint: string[];
  cmd: string[];
  /** Environment the image defines (before the manifest's). */
  env: Record<string, string>;
  /** The image's USER (default root). */
  user?: { uid: number; gid: number };
}

/** How a container runs: a built-in program, `metallb <args>` from this repository, or a host command. */
export type Launch =
  | { kind: 'builtin'; program: BuiltinProgram; args: string[] }
  | { kind: 'metallb'; args: string[] }
  | { kind: 'host'; argv: string[] };

export interface ImageMatch {
  ref: ImageRef;
  spec: ImageSpec;
  id: ImageId;
}

type ImageId = BuiltinProgram | 'metallb-controller' | 'metallb-speaker' | 'metallb-ts';

const PATH_ENV = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export const IMAGES: Record<ImageId, ImageSpec> = {
  nginx: {
    display: 'nginx',
    description: 'the nginx welcome page on :80',
    entrypoint: ['/docker-entrypoint.sh'],
    cmd: ['nginx', '-g', 'daemon off;'],
    env: { PATH: PATH_ENV, NGINX_VERSION: '1.27.4' },
  },
  'echo-hname': {
    display: 'sysnet4admin/echo-hname',
    description: 'answers on :80 with the pod name',
    entrypoint: ['/docker-entrypoint.sh'],
    cmd: ['nginx', '-g', 'daemon off;'],
    env: { PATH: PATH_ENV, NGINX_VERSION: '1.26.0' },
  },
  'echo-ip': {
    display: 'sysnet4admin/echo-ip',
    description: 'answers on :80 with the client address it saw',
    entrypoint: ['/docker-entrypoint.sh'],
    cmd: ['nginx', '-g', 'daemon off;'],
    env: { PATH: PATH_ENV, NGINX_VERSION: '1.26.0' },
  },
  'metallb-controller': {
    display: 'quay.io/metallb/controller',
    description: 'metallb-ts `metallb controller` with the manifest args',
    entrypoint: ['/controller'],
    cmd: [],
    env: { PATH: PATH_ENV },
  },
  'metallb-speaker': {
    display: 'quay.io/metallb/speaker',
    description: 'metallb-ts `metallb speaker` with the manifest args',
    entrypoint: ['/speaker'],
    cmd: [],
    env: { PATH: PATH_ENV },
  },
  'metallb-ts': {
    display: 'metallb-ts',
    description: "this project's image: `metallb` with the manifest args",
    entrypoint: ['node', '/app/bin/metallb.js'],
    cmd: ['--help'],
    env: { PATH: PATH_ENV, NODE_ENV: 'production' },
    // The Dockerfile's USER 65534:65534.
    user: { uid: 65534, gid: 65534 },
  },
};

/** Splits `[registry/]path[:tag][@digest]`; returns undefined for something that is not an image reference. */
export function parseImageRef(raw: string): ImageRef | undefined {
  const s = raw.trim();
  if (s === '' || /\s/.test(s)) return undefined;
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag = '';
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const parts = rest.split('/');
  if (parts.some((p) => p === '')) return undefined;
  let registry = 'docker.io';
  if (parts.length > 1 && (parts[0]!.includes('.') || parts[0]!.includes(':') || parts[0] === 'localhost')) {
    registry = parts.shift()!;
  }
  let repository = parts.join('/').toLowerCase();
  if (registry === 'docker.io' && repository.startsWith('library/')) repository = repository.slice('library/'.length);
  const full = registry === 'docker.io' && !repository.includes('/') ? `library/${repository}` : repository;
  const canonical = `${registry}/${full}${tag || !digest ? `:${tag || 'latest'}` : ''}${digest ? `@${digest}` : ''}`;
  return { raw: s, canonical, repository, tag: tag || 'latest', ...(digest ? { digest } : {}) };
}

/** The built-in image an image reference names, if any. */
export function matchImage(raw: string): ImageMatch | undefined {
  const ref = parseImageRef(raw);
  if (!ref) return undefined;
  const id = imageIdFor(ref.repository);
  return id ? { ref, spec: IMAGES[id], id } : undefined;
}

function imageIdFor(repository: string): ImageId | undefined {
  switch (repository) {
    case 'nginx':
      return 'nginx';
    case 'sysnet4admin/echo-hname':
      return 'echo-hname';
    case 'sysnet4admin/echo-ip':
      return 'echo-ip';
    case 'metallb/controller':
      return 'metallb-controller';
    case 'metallb/speaker':
      return 'metallb-speaker';
  }
  const last = repository.split('/').pop();
  return last === 'metallb-ts' ? 'metallb-ts' : undefined;
}

/** The images the lab runs, for the Event on an unknown image. */
export function knownImagesText(): string {
  return `${Object.values(IMAGES)
    .map((s) => s.display)
    .join(', ')} (any registry and tag; quay.io/metallb/* and metallb/* alike)`;
}

const base = (p: string | undefined): string => (p ?? '').split('/').pop() ?? '';

/**
 * The process for a container: the runtime rule (command replaces ENTRYPOINT and drops CMD; args replace CMD) gives
 * an argv; when argv runs the image's own program it becomes the built-in equivalent, otherwise it is a command of
 * the host (the lab's images share the host's filesystem).
 */
export function resolveLaunch(m: ImageMatch, command: string[] | undefined, args: string[] | undefined): Launch {
  const hasCommand = command !== undefined && command.length > 0;
  const hasArgs = args !== undefined && args.length > 0;
  const entry = hasCommand ? command : m.spec.entrypoint;
  const rest = hasArgs ? args : hasCommand ? [] : m.spec.cmd;
  const argv = [...entry, ...rest];
  switch (m.id) {
    case 'nginx':
    case 'echo-hname':
    case 'echo-ip': {
      const b0 = base(argv[0]);
      if (b0 === 'docker-entrypoint.sh') {
        // The entrypoint script runs its arguments; only `nginx …` is the image's server.
        if (argv.length === 1 || base(argv[1]) === 'nginx') return { kind: 'builtin', program: m.id, args: argv.slice(1) };
        return { kind: 'host', argv: argv.slice(1) };
      }
      if (b0 === 'nginx') return { kind: 'builtin', program: m.id, args: argv.slice(1) };
      return { kind: 'host', argv };
    }
    case 'metallb-controller':
    case 'metallb-speaker': {
      const sub = m.id === 'metallb-controller' ? 'controller' : 'speaker';
      const b0 = base(argv[0]);
      if (b0 === 'controller' || b0 === 'speaker') return { kind: 'metallb', args: [b0, ...argv.slice(1)] };
      const viaOurs = metallbArgs(argv);
      if (viaOurs) return { kind: 'metallb', args: viaOurs };
      if (argv.length === 0) return { kind: 'metallb', args: [sub] };
      return { kind: 'host', argv };
    }
    case 'metallb-ts': {
      const viaOurs = metallbArgs(argv);
      if (viaOurs) return { kind: 'metallb', args: viaOurs };
      const b0 = base(argv[0]);
      if (b0 === 'controller' || b0 === 'speaker') return { kind: 'metallb', args: [b0, ...argv.slice(1)] };
      return { kind: 'host', argv };
    }
  }
}

/** `metallb …`, `…/metallb.js …`, `node …/metallb.js …` → the arguments after the program. */
function metallbArgs(argv: string[]): string[] | undefined {
  const b0 = base(argv[0]);
  if (b0 === 'metallb' || b0 === 'metallb.js') return argv.slice(1);
  if ((b0 === 'node' || b0 === 'nodejs') && (base(argv[1]) === 'metallb.js' || base(argv[1]) === 'main.js')) return argv.slice(2);
  return undefined;
}
