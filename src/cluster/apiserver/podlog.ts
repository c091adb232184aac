// The `pods/log` subresource, proxied to the kubelet of the pod's node as kube-apiserver does (pkg/registry/core/pod
// LogLocation): the container is resolved (the only one, or the error naming the choices), the node's address and
// kubelet port come from its Node object, and the kubelet's `/containerLogs/{ns}/{pod}/{container}` answer is
// streamed back (follow keeps the stream open). A pod not yet scheduled has no logs (an empty answer).
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Logger } from '../../log.js';
import type { ReqCtx } from './api.js';
import { ApiError, badRequest, invalid, notFound, type FieldError } from './errors.js';
import { queryBool, queryInt, queryTime } from './params.js';
import { resourceKey } from './registry.js';
import type { Store } from './store.js';
import { obj, str, type Obj } from './util.js';

const PODS = resourceKey('', 'pods');
const NODES = resourceKey('', 'nodes');
const DEFAULT_KUBELET_PORT = 10250;
/** kube-apiserver's --kubelet-preferred-address-types as kubeadm sets it */
const ADDRESS_PREFERENCE = ['InternalIP', 'ExternalIP', 'Hostname'];

const names = (list: unknown): string[] => (Array.isArray(list) ? list.map((c) => str(obj(c).name) ?? '').filter(Boolean) : []);

/** The container whose logs are wanted (kube's validateContainer). */
export function resolveContainer(pod: Obj, requested: string): string {
  const spec = obj(pod.spec);
  const podName = String(obj(pod.metadata).name ?? '');
  const containers = names(spec.containers);
  const all = [...names(spec.initContainers), ...containers, ...names(spec.ephemeralContainers)];
  if (requested === '') {
    if (containers.length === 1) return containers[0]!;
    if (containers.length === 0) throw badRequest(`a container name must be specified for pod ${podName}`);
    throw badRequest(`a container name must be specified for pod ${podName}, choose one of: [${all.join(' ')}]`);
  }
  if (!all.includes(requested)) throw badRequest(`container ${requested} is not valid for pod ${podName}`);
  return requested;
}

/** The kubelet's address and port for a node. */
export function kubeletAddress(node: Obj): { host: string; port: number } | undefined {
  const st = obj(node.status);
  const addrs = Array.isArray(st.addresses) ? st.addresses.map(obj) : [];
  let host: string | undefined;
  for (const t of ADDRESS_PREFERENCE) {
    host = str(addrs.find((a) => a.type === t)?.address);
    if (host) break;
  }
  if (!host) return undefined;
  const p = obj(obj(st.daemonEndpoints).kubeletEndpoint).Port;
  return { host, port: typeof p === 'number' && p > 0 ? p : DEFAULT_KUBELET_PORT };
}

/** PodLogOptions from the query, validated (kube's ValidatePodLogOptions), as the kubelet's query string. */
export function logQuery(q: URLSearchParams, podName: string): URLSearchParams {
  const out = new URLSearchParams();
  const errs: FieldError[] = [];
  if (queryBool(q, 'follow')) out.set('follow', 'true');
  if (queryBool(q, 'previous')) out.set('previous', 'true');
  if (queryBool(q, 'timestamps')) out.set('timestamps', 'true');
  const tail = queryInt(q, 'tailLines');
  if (tail !== undefined) {
    if (tail < 0) errs.push({ type: 'Invalid', field: 'tailLines', value: tail, detail: 'must be greater than or equal to 0' });
    out.set('tailLines', String(tail));
  }
  const limit = queryInt(q, 'limitBytes');
  if (limit !== undefined) {
    if (limit < 1) errs.push({ type: 'Invalid', field: 'limitBytes', value: limit, detail: 'must be greater than 0' });
    out.set('limitBytes', String(limit));
  }
  const since = queryInt(q, 'sinceSeconds');
  if (since !== undefined) {
    if (since < 1) errs.push({ type: 'Invalid', field: 'sinceSeconds', value: since, detail: 'must be greater than 0' });
    out.set('sinceSeconds', String(since));
  }
  const sinceTime = queryTime(q, 'sinceTime');
  if (sinceTime) out.set('sinceTime', sinceTime.toISOString().replace(/\.\d+Z$/, 'Z'));
  if (since !== undefined && sinceTime) errs.push({ type: 'Forbidden', field: '', detail: 'at most one of `sinceTime` or `sinceSeconds` may be specified' });
  if (errs.length) throw invalid('', 'PodLogOptions', podName, errs);
  return out;
}

function kubeletError(status: number, body: string, podName: string): ApiError {
  const text = body.trim();
  if (status === 400) return badRequest(text);
  if (status === 404) return notFound('', 'pods/log', podName);
  if (status >= 500) return new ApiError(500, 'InternalError', `Internal error occurred: ${text}`, { causes: [{ message: text }] });
  return new ApiError(status, '', text || `the kubelet answered ${status}`);
}

export function podLogProxy(store: Store, log: Logger) {
  return async (req: IncomingMessage, res: ServerResponse, ctx: ReqCtx, podName: string, q: URLSearchParams): Promise<void> => {
    const ns = ctx.namespace ?? '';
    const pod = store.get(PODS, ns, podName);
    if (!pod) throw notFound('', 'pods', podName);
    const container = resolveContainer(pod, q.get('container') ?? '');
    const kq = logQuery(q, podName);
    const nodeName = str(obj(pod.spec).nodeName);
    if (!nodeName) {
      // not scheduled: kube-apiserver answers with an empty stream
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-cache, private' });
      res.end();
      return;
    }
    const node = store.get(NODES, '', nodeName);
    if (!node) throw notFound('', 'nodes', nodeName);
    const addr = kubeletAddress(node);
    if (!addr) throw new ApiError(500, 'InternalError', `Internal error occurred: node ${nodeName} has no address`);
    const path = `/containerLogs/${encodeURIComponent(ns)}/${encodeURIComponent(podName)}/${encodeURIComponent(container)}${kq.size ? `?${kq.toString()}` : ''}`;
    const hostPort = `${addr.host.includes(':') ? `[${addr.host}]` : addr.host}:${addr.port}`;
    const display = `http://${hostPort}${path}`;
    await new Promise<void>((resolve, reject) => {
      const up = httpRequest({ host: addr.host, port: addr.port, path, method: 'GET', agent: false }, (kres) => {
        const status = kres.statusCode ?? 0;
        if (status < 200 || status > 206) {
          let body = '';
          kres.setEncoding('utf8').on('data', (c: string) => {
            if (body.length < 4096) body += c;
          });
          kres.on('end', () => reject(kubeletError(status, body, podName)));
          kres.on('error', reject);
          return;
        }
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
        res.flushHeaders();
        kres.on('data', (c: Buffer) => res.write(c));
        kres.on('end', () => {
          res.end();
          resolve();
        });
        kres.on('error', () => {
          res.end();
          resolve();
        });
      });
      up.on('error', (e: NodeJS.ErrnoException) => {
        if (res.headersSent) {
          res.end();
          resolve();
          return;
        }
        const why = e.code === 'ECONNREFUSED' ? `dial tcp ${hostPort}: connect: connection refused` : e.code === 'EHOSTUNREACH' ? `dial tcp ${hostPort}: connect: no route to host` : e.message;
        // kube-apiserver's answer to an error that is not a Status: code 500, no reason
        reject(new ApiError(500, '', `Get "${display}": ${why}`));
      });
      // the client went away (kubectl logs -f interrupted): stop reading from the kubelet
      res.on('close', () => {
        if (!res.writableFinished) up.destroy();
      });
      up.end();
    });
    log.debug({ pod: `${ns}/${podName}`, container, node: nodeName }, 'proxied pod logs');
  };
}
