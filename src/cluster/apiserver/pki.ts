// The API server's PKI, kept in a directory like kubeadm's /etc/kubernetes/pki: a CA of its own (generated on first
// start), the serving certificate (regenerated when the wanted names are not all in it or it expires soon), the
// service-account signing key pair and the admin client certificate (CN kubernetes-admin, O system:masters).
import { createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { generate } from 'selfsigned';

export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  /** ES256 key pair (PKCS#8 / SPKI PEM) that signs service-account tokens */
  saKey: string;
  saPub: string;
  adminCert: string;
  adminKey: string;
}

export const PKI_FILES = {
  caCert: 'ca.crt',
  caKey: 'ca.key',
  serverCert: 'apiserver.crt',
  serverKey: 'apiserver.key',
  saKey: 'sa.key',
  saPub: 'sa.pub',
  adminCert: 'admin.crt',
  adminKey: 'admin.key',
} as const;

const DAY = 24 * 3600_000;
const YEAR = 365 * DAY;

/** Writes through a temporary file and a rename, so a reader never sees half a key. */
export function writeAtomic(path: string, data: string, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

const read = (dir: string, f: string): string | undefined => {
  const p = join(dir, f);
  return existsSync(p) ? readFileSync(p, 'utf8') : undefined;
};

/** Every name in `sans` (DNS names or IP addresses) is in the certificate, it chains to `ca`, and stays valid a month. */
export function certCovers(certPem: string, caPem: string, sans: readonly string[]): boolean {
  try {
    const c = new X509Certificate(certPem);
    if (!c.verify(new X509Certificate(caPem).publicKey)) return false;
    if (new Date(c.validTo).getTime() < Date.now() + 30 * DAY) return false;
    return sans.every((n) => (isIP(n) ? c.checkIP(n) !== undefined : c.checkHost(n, { wildcards: false }) !== undefined));
  } catch {
    return false;
  }
}

function validCA(certPem: string | undefined, keyPem: string | undefined): boolean {
  if (!certPem || !keyPem) return false;
  try {
    const c = new X509Certificate(certPem);
    return c.ca && new Date(c.validTo).getTime() > Date.now() + 30 * DAY;
  } catch {
    return false;
  }
}

/** A self-signed CA for ten years (the cluster's is `kubernetes`, the aggregation layer's `front-proxy-ca`, as kubeadm names them). */
export async function newCA(commonName = 'kubernetes'): Promise<{ cert: string; key: string }> {
  const now = Date.now();
  const g = await generate([{ name: 'commonName', value: commonName }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate: new Date(now - 60_000),
    notAfterDate: new Date(now + 10 * YEAR),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  return { cert: g.cert, key: g.private };
}

/** A certificate signed by the CA: serving (`sans`) or client (CN = user, one O per group). */
export async function signCert(
  ca: { cert: string; key: string },
  opts: { commonName: string; organizations?: readonly string[]; sans?: readonly string[]; usage: 'server' | 'client'; days?: number },
): Promise<{ cert: string; key: string }> {
  const now = Date.now();
  const attrs = [{ name: 'commonName', value: opts.commonName }, ...(opts.organizations ?? []).map((o) => ({ name: 'organizationName', value: o }))];
  const g = await generate(attrs, {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate: new Date(now - 60_000),
    notAfterDate: new Date(now + (opts.days ?? 365) * DAY),
    ca,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      opts.usage === 'server' ? { name: 'extKeyUsage', serverAuth: true } : { name: 'extKeyUsage', clientAuth: true },
      ...(opts.sans?.length
        ? [{ name: 'subjectAltName' as const, altNames: opts.sans.map((n) => (isIP(n) ? { type: 7 as const, ip: n } : { type: 2 as const, value: n })) }]
        : []),
    ],
  });
  return { cert: g.cert, key: g.private };
}

/**
 * Load the PKI from `dir`, creating what is missing: the CA once (a new CA would invalidate every kubeconfig and
 * token issued so far), the serving certificate whenever it does not cover `sans`.
 */
export async function loadOrCreatePki(dir: string, sans: readonly string[], onChange?: (what: string) => void): Promise<Pki> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let caCert = read(dir, PKI_FILES.caCert);
  let caKey = read(dir, PKI_FILES.caKey);
  let caRenewed = false;
  if (!validCA(caCert, caKey)) {
    const ca = await newCA();
    caCert = ca.cert;
    caKey = ca.key;
    writeAtomic(join(dir, PKI_FILES.caKey), caKey, 0o600);
    writeAtomic(join(dir, PKI_FILES.caCert), caCert, 0o644);
    caRenewed = true;
    onChange?.('ca');
  }
  const ca = { cert: caCert!, key: caKey! };

  let serverCert = read(dir, PKI_FILES.serverCert);
  let serverKey = read(dir, PKI_FILES.serverKey);
  if (caRenewed || !serverCert || !serverKey || !certCovers(serverCert, ca.cert, sans)) {
    const s = await signCert(ca, { commonName: 'kube-apiserver', sans, usage: 'server' });
    serverCert = s.cert;
    serverKey = s.key;
    writeAtomic(join(dir, PKI_FILES.serverKey), serverKey, 0o600);
    writeAtomic(join(dir, PKI_FILES.serverCert), serverCert, 0o644);
    onChange?.('serving certificate');
  }

  let adminCert = read(dir, PKI_FILES.adminCert);
  let adminKey = read(dir, PKI_FILES.adminKey);
  if (caRenewed || !adminCert || !adminKey || !certCovers(adminCert, ca.cert, [])) {
    const a = await signCert(ca, { commonName: 'kubernetes-admin', organizations: ['system:masters'], usage: 'client' });
    adminCert = a.cert;
    adminKey = a.key;
    writeAtomic(join(dir, PKI_FILES.adminKey), adminKey, 0o600);
    writeAtomic(join(dir, PKI_FILES.adminCert), adminCert, 0o644);
    onChange?.('admin client certificate');
  }

  let saKey = read(dir, PKI_FILES.saKey);
  let saPub = read(dir, PKI_FILES.saPub);
  if (!saKey) {
    const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    saKey = kp.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    writeAtomic(join(dir, PKI_FILES.saKey), saKey, 0o600);
    saPub = undefined;
    onChange?.('service-account signing key');
  }
  if (!saPub) {
    saPub = createPublicKey(saKey).export({ type: 'spki', format: 'pem' }).toString();
    writeAtomic(join(dir, PKI_FILES.saPub), saPub, 0o644);
  }
  return { dir, caCert: ca.cert, caKey: ca.key, serverCert, serverKey, saKey, saPub, adminCert, adminKey };
}

/** An in-memory PKI (no directory): the HTTP-only server still signs service-account tokens. */
export function ephemeralSigningKey(): { saKey: string; saPub: string } {
  const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    saKey: kp.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    saPub: kp.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}
