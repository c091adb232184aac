// The built-in images on disk: each program of src/cluster/images is bundled once into a single plain-JavaScript
// file (`node file.mjs` starts in tens of milliseconds, without TypeScript loaders), cached under the kubelet's root
// directory by source hash. A compiled tree (dist/, the container image) is used instead while it is newer than the
// sources, by bin/metallb.js's own rule (compiledEntry): an old `npm run build` must not shadow them.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BuiltinProgram, ImageMatch } from './images.js';

/** bin/bundle.mjs, loaded from the installation at run time: its relative path differs between src/ and dist/. */
type BundleModule = typeof import('../../../bin/bundle.mjs');

/** The repository (or installed package) root: the nearest directory above this module with bin/metallb.js. */
export function projectRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(d, 'bin', 'metallb.js')) && existsSync(join(d, 'package.json'))) return d;
    d = dirname(d);
  }
  throw new Error('cannot find the metallb-ts installation (bin/metallb.js) above the kubelet module');
}

export interface BuiltImage {
  /** File to run with node. */
  path: string;
  /** `sha256:<hex>` of that file. */
  digest: string;
}

export class ImageStore {
  private readonly built = new Map<BuiltinProgram, Promise<BuiltImage>>();
  readonly root: string;

  /** `root`: where the images' sources (and dist/) are; the installation's by default. */
  constructor(private readonly cacheDir: string, root = projectRoot()) {
    this.root = root;
  }

  /** `node <repo>/bin/metallb.js`. */
  get metallbBin(): string {
    return join(this.root, 'bin', 'metallb.js');
  }

  get(program: BuiltinProgram): Promise<BuiltImage> {
    let p = this.built.get(program);
    if (!p) {
      p = this.build(program);
      this.built.set(program, p);
      p.catch(() => this.built.delete(program));
    }
    return p;
  }

  /** The imageID a runtime would report: `<repository>@sha256:<digest of what runs>`. */
  async imageID(m: ImageMatch): Promise<string> {
    const repo = m.ref.canonical.replace(/@.*$/, '').replace(/:[^/:]+$/, '');
    if (m.id === 'nginx' || m.id === 'echo-hname' || m.id === 'echo-ip') return `${repo}@${(await this.get(m.id)).digest}`;
    this.metallbDigest ??= digestOf(join(this.root, 'package.json'));
    return `${repo}@${this.metallbDigest}`;
  }

  private metallbDigest: string | undefined;

  private async build(program: BuiltinProgram): Promise<BuiltImage> {
    const { compiledEntry } = (await import(pathToFileURL(join(projectRoot(), 'bin', 'bundle.mjs')).href)) as BundleModule;
    const compiled = compiledEntry(this.root, join('src', 'cluster', 'images', `${program}.js`)).entry;
    if (compiled) return { path: compiled, digest: digestOf(compiled) };
    const srcDir = join(this.root, 'src', 'cluster', 'images');
    const entry = join(srcDir, `${program}.ts`);
    const h = createHash('sha256');
    for (const f of [entry, join(srcDir, 'common.ts')]) h.update(readFileSync(f));
    const out = join(this.cacheDir, `${program}-${h.digest('hex').slice(0, 16)}.mjs`);
    if (!existsSync(out)) {
      mkdirSync(this.cacheDir, { recursive: true });
      const esbuild = await import('esbuild');
      const tmp = `${out}.tmp-${process.pid}`;
      await esbuild.build({
        entryPoints: [entry],
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        outfile: tmp,
        logLevel: 'silent',
        legalComments: 'none',
        banner: { js: `// built-in image ${program} of the metallb-ts lab, bundled from src/cluster/images` },
      });
      renameSync(tmp, out);
    }
    return { path: out, digest: digestOf(out) };
  }
}

function digestOf(path: string): string {
  return `sha256:${createHash('sha256').update(readFileSync(path)).digest('hex')}`;
}
