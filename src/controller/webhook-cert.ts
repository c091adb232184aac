// The webhook's serving certificate: `--cert-dir` tls.crt/tls.key when present; otherwise a CA and a serving
// certificate for `<service>.<namespace>.svc` kept in Secret `metallb-webhook-cert` (reused when present, generated
// and stored when not), with the CA bundle patched into ValidatingWebhookConfiguration `metallb-webhook-configuration`.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { generate } from 'selfsigned';
import type { Logger } from '../log.js';
import type { Secret } from '../k8s/types.js';
import { errorText, isAlreadyExists, isConflict, isNotFound, type KubeClient } from '../k8s/client.js';
import type { FeatureSwitch } from '../k8s/features.js';
import { collectionPath, objectPath, R } from '../k8s/resources.js';

export interface ServingCert {
  cert: string;
  key: string;
  /** PEM of the CA that signed `cert`, when known. */
  ca?: string;
  source: 'cert-dir' | 'secret' | 'generated';
}

export interface WebhookCertOptions {
  namespace: string;
  certDir?: string;
  secretName: string;
  serviceName: string;
  webhookConfigurationName: string;
  /** Whether this instance may create the Secret / patch the webhook configuration. */
  canWrite: boolean;
  /** `webhook-certificate-secret`: off = the certificate is generated in memory; a refused request turns it off. */
  secretFeature?: FeatureSwitch;
  /** `webhook-ca-bundle`: off = the webhook configuration is left alone; a refused request turns it off. */
  bundleFeature?: FeatureSwitch;
}

export function dnsNames(service: string, namespace: string): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`, 'localhost'];
}

export async function generateServingCert(service: string, namespace: string): Promise<{ ca: string; caKey: string; cert: string; key: string }> {
  const notBeforeDate = new Date(Date.now() - 60_000);
  const notAfterDate = new Date(Date.now() + 10 * 365 * 24 * 3600_000);
  const ca = await generate([{ name: 'commonName', value: `${service}-ca` }, { name: 'organizationName', value: 'metallb' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const names = dnsNames(service, namespace);
  const leaf = await generate([{ name: 'commonName', value: `${service}.${namespace}.svc` }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [...names.map((value) => ({ type: 2 as const, value })), { type: 7, ip: '127.0.0.1' }, { type: 7, ip: '::1' }] },
    ],
  });
  return { ca: ca.cert, caKey: ca.private, cert: leaf.cert, key: leaf.private };
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined): string => (s ? Buffer.from(s, 'base64').toString('utf8') : '');

/** Whether `pem` is a certificate valid for at least another day and naming `host`. */
function usable(pem: string, host: string): boolean {
  try {
    const x = new X509Certificate(pem);
    return new Date(x.validTo).getTime() > Date.now() + 24 * 3600_000 && x.checkHost(host) !== undefined;
  } catch {
    return false;
  }
}

export async function loadServingCert(client: KubeClient | undefined, opts: WebhookCertOptions, log: Logger): Promise<ServingCert> {
  if (opts.certDir) {
    const crt = join(opts.certDir, 'tls.crt');
    const key = join(opts.certDir, 'tls.key');
    if (existsSync(crt) && existsSync(key)) {
      const caFile = join(opts.certDir, 'ca.crt');
      log.info({ certDir: opts.certDir }, 'webhook: using the certificate from --cert-dir');
      return { cert: readFileSync(crt, 'utf8'), key: readFileSync(key, 'utf8'), ca: existsSync(caFile) ? readFileSync(caFile, 'utf8') : undefined, source: 'cert-dir' };
    }
  }
  const host = `${opts.serviceName}.${opts.namespace}.svc`;
  const generated = async (): Promise<ServingCert> => {
    const g = await generateServingCert(opts.serviceName, opts.namespace);
    return { cert: g.cert, key: g.key, ca: g.ca, source: 'generated' };
  };
  const bundle = async (r: ServingCert): Promise<ServingCert> => {
    if (client && opts.canWrite && r.ca && opts.bundleFeature?.enabled !== false) await patchCABundle(client, opts.webhookConfigurationName, r.ca, log, opts.bundleFeature);
    return r;
  };
  if (client && opts.secretFeature?.enabled === false) return await bundle(await generated());
  if (!client) return await generated();
  const path = objectPath(R.secrets, opts.namespace, opts.secretName);
  let existing: Secret | undefined;
  try {
    existing = await client.get<Secret>(path);
  } catch (err) {
    if (opts.secretFeature?.offIfForbidden(err)) return await bundle(await generated());
    if (!isNotFound(err)) throw err;
  }
  const fromSecret = (s: Secret): ServingCert | undefined => {
    const cert = unb64(s.data?.['tls.crt']);
    const key = unb64(s.data?.['tls.key']);
    if (!cert || !key || !usable(cert, host)) return undefined;
    return { cert, key, ca: unb64(s.data?.['ca.crt']) || undefined, source: 'secret' };
  };
  let result = existing ? fromSecret(existing) : undefined;
  if (result) {
    log.info({ secret: `${opts.namespace}/${opts.secretName}` }, 'webhook: using the certificate stored in the secret');
  } else {
    const g = await generateServingCert(opts.serviceName, opts.namespace);
    result = { cert: g.cert, key: g.key, ca: g.ca, source: 'generated' };
    const data = { 'ca.crt': b64(g.ca), 'ca.key': b64(g.caKey), 'tls.crt': b64(g.cert), 'tls.key': b64(g.key) };
    if (opts.canWrite) {
      try {
        if (existing) {
          await client.put(path, { ...existing, data });
        } else {
          await client.post(collectionPath(R.secrets, opts.namespace), {
            apiVersion: 'v1',
            kind: 'Secret',
            type: 'kubernetes.io/tls',
            metadata: { name: opts.secretName, namespace: opts.namespace },
            data,
          });
        }
        log.info({ secret: `${opts.namespace}/${opts.secretName}` }, 'webhook: generated a certificate and stored it in the secret');
      } catch (err) {
        if (isAlreadyExists(err) || isConflict(err)) {
          // Another replica was faster: use its certificate.
          const theirs = fromSecret(await client.get<Secret>(path));
          if (theirs) result = theirs;
        } else if (!opts.secretFeature?.offIfForbidden(err)) {
          log.warn({ secret: `${opts.namespace}/${opts.secretName}`, err: errorText(err) }, 'webhook: could not store the generated certificate');
        }
      }
    }
  }
  return await bundle(result);
}

interface WebhookConfiguration {
  metadata?: { name?: string; resourceVersion?: string };
  webhooks?: { name?: string; clientConfig?: { caBundle?: string } }[];
}

/** Writes the CA into every webhook of the configuration, when it exists and differs. */
export async function patchCABundle(client: KubeClient, name: string, caPem: string, log: Logger, feature?: FeatureSwitch): Promise<boolean> {
  const path = objectPath(R.validatingWebhookConfigurations, undefined, name);
  const bundle = b64(caPem);
  for (let attempt = 0; attempt < 5; attempt++) {
    let vwc: WebhookConfiguration;
    try {
      vwc = await client.get<WebhookConfiguration>(path);
    } catch (err) {
      if (isNotFound(err)) {
        log.debug({ name }, 'webhook: no ValidatingWebhookConfiguration to patch');
        return false;
      }
      if (feature?.offIfForbidden(err)) return false;
      log.warn({ name, err: errorText(err) }, 'webhook: could not read the ValidatingWebhookConfiguration');
      return false;
    }
    const hooks = vwc.webhooks ?? [];
    if (hooks.every((h) => h.clientConfig?.caBundle === bundle)) return false;
    for (const h of hooks) h.clientConfig = { ...h.clientConfig, caBundle: bundle };
    try {
      await client.put(path, vwc);
      log.info({ name, webhooks: hooks.length }, 'webhook: CA bundle written to the ValidatingWebhookConfiguration');
      return true;
    } catch (err) {
      if (isConflict(err)) continue;
      if (feature?.offIfForbidden(err)) return false;
      log.warn({ name, err: errorText(err) }, 'webhook: could not patch the CA bundle');
      return false;
    }
  }
  return false;
}
