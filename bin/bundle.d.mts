// Types of bin/bundle.mjs (plain JavaScript: bin/metallb.js loads it before any TypeScript loader exists).
export declare const PACKAGE_ROOT: string;
export declare const BUNDLE_ENTRIES: Readonly<Record<string, string>>;
export declare function cacheDir(root?: string): string;
export declare function sourceHash(root?: string): string;
export declare function bundleDir(root?: string, hash?: string): string;
export declare function freshBundle(root?: string): string | undefined;
export declare function compiledEntry(root?: string, file?: string): { entry?: string; stale?: string };
export declare function ensureBundle(root?: string, opts?: { timeoutMs?: number }): Promise<string>;
export declare const STALE_LOCK_MS: number;
export declare function publishBundle(tmp: string, dir: string): void;
