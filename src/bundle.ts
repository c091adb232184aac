// Whether this code runs from the esbuild bundle (bin/bundle.mjs defines METALLB_BUNDLE there), and where the bundle's
// other entry points are: every output file sits in one directory, so a module cannot find its worker beside itself.
declare const METALLB_BUNDLE: boolean | undefined;

export const inBundle: boolean = typeof METALLB_BUNDLE !== 'undefined' && METALLB_BUNDLE;

/** The URL of a bundle entry point (`memberlist-worker`), or undefined outside the bundle. */
export const bundleEntryURL = (name: string): URL | undefined => (inBundle ? new URL(`./${name}.mjs`, import.meta.url) : undefined);
