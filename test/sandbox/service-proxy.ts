// SPDX-License-Identifier: Apache-2.0
/**
 * Our kube-proxy. Every Service gets a stable clusterIP (127.B.x.y, B random per sandbox) at creation (see
 * cluster.ts), and this module listens on clusterIP:port for each of its ports and forwards each
 * TCP connection to a ready pod its selector matches (podIP:targetPort, named ports resolved
 * through the container ports), or for a Service without a selector (`default/kubernetes`) to
 * the first address of its Endpoints. With no ready pod the connection is closed at once, as a
 * real Service without endpoints refuses. TLS passes through untouched.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../../common/logger.js';
import { Types } from './cluster.js';
import type { ObjectApi } from './object-api.js';
import { getPath, isRecord, type KObject } from './object.js';
import { matchesLabelMap } from './selectors.js';
import { resolveTargetPort } from './endpoints.js';
import { isReadyPod } from './workloads.js';

interface Listener {
  readonly server: Server;
  readonly sockets: Set<Socket>;
}

/** A Running pod whose Ready condition is True: the proxy forwards to it. */
function isReady(pod: KObject): boolean {
  return getPath(pod, ['status', 'phase']) === 'Running' && isReadyPod(pod);
}

/** The proxy. */
export class ServiceProxy {
  readonly #listeners = new Map<string, Listener>();
  #unsubscribe: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly api: ObjectApi,
    private readonly log: Logger,
  ) {}

  /** Starts following Services. */
  start(): void {
    this.#unsubscribe = this.api.store.subscribe((e) => {
      if (e.typeKey === Types.Services) this.#schedule();
    });
    this.#schedule();
  }

  /** Closes every listener and forwarded connection. */
  stop(): void {
    this.#unsubscribe?.();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    for (const key of [...this.#listeners.keys()]) this.#close(key);
  }

  #schedule(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#sync();
    }, 10);
  }

  #close(key: string): void {
    const l = this.#listeners.get(key);
    if (l === undefined) return;
    this.#listeners.delete(key);
    for (const s of l.sockets) s.destroy();
    l.server.close();
  }

  #sync(): void {
    const type = this.api.types.get(Types.Services);
    if (type === undefined) return;
    const wanted = new Map<string, { ns: string; name: string; port: number }>();
    for (const svc of this.api.list(type, undefined).items) {
      const ip = getPath(svc, ['spec', 'clusterIP']);
      const ports = getPath(svc, ['spec', 'ports']);
      if (typeof ip !== 'string' || !ip.startsWith('127.') || !Array.isArray(ports)) continue;
      for (const p of ports) {
        if (isRecord(p) && typeof p['port'] === 'number') {
          wanted.set(`${ip}:${p['port']}`, {
            ns: svc.metadata.namespace ?? '',
            name: svc.metadata.name ?? '',
            port: p['port'],
          });
        }
      }
    }
    for (const key of [...this.#listeners.keys()]) if (!wanted.has(key)) this.#close(key);
    for (const [key, svc] of wanted) {
      if (this.#listeners.has(key)) continue;
      const [ip = ''] = key.split(':');
      const sockets = new Set<Socket>();
      const server = createServer((client) => this.#forward(client, svc, sockets));
      server.on('error', (err) =>
        this.log.warn('service listen failed', {
          service: `${svc.ns}/${svc.name}`,
          address: key,
          error: err.message,
        }),
      );
      server.listen(svc.port, ip);
      this.#listeners.set(key, { server, sockets });
    }
  }

  /** The address a new connection to the Service's `port` goes to, if any. */
  #target(svc: {
    ns: string;
    name: string;
    port: number;
  }): { ip: string; port: number } | undefined {
    const serviceType = this.api.types.get(Types.Services);
    const service =
      serviceType === undefined ? undefined : this.api.find(serviceType, svc.ns, svc.name);
    const selector = getPath(service, ['spec', 'selector']);
    const portSpec = (getPath(service, ['spec', 'ports']) as unknown[] | undefined)?.find(
      (p) => isRecord(p) && p['port'] === svc.port,
    );
    if (!isRecord(selector)) return this.#fromEndpoints(svc, getPath(portSpec, ['name']));
    const podType = this.api.types.get(Types.Pods);
    const pod =
      podType === undefined
        ? undefined
        : this.api
            .list(podType, svc.ns)
            .items.find(
              (p) =>
                matchesLabelMap(selector as Record<string, string>, p.metadata.labels) &&
                isReady(p),
            );
    const podIp = getPath(pod, ['status', 'podIP']);
    const port =
      pod === undefined
        ? undefined
        : resolveTargetPort(pod, getPath(portSpec, ['targetPort']) ?? svc.port);
    return typeof podIp === 'string' && port !== undefined ? { ip: podIp, port } : undefined;
  }

  /** A Service without a selector goes where its Endpoints say (as `default/kubernetes`). */
  #fromEndpoints(
    svc: { ns: string; name: string },
    portName: unknown,
  ): { ip: string; port: number } | undefined {
    const type = this.api.types.get(Types.Endpoints);
    const ep = type === undefined ? undefined : this.api.find(type, svc.ns, svc.name);
    const subsets = getPath(ep, ['subsets']);
    for (const s of Array.isArray(subsets) ? subsets.filter(isRecord) : []) {
      const addresses = Array.isArray(s['addresses']) ? s['addresses'] : [];
      const ip = getPath(addresses[0], ['ip']);
      const ports = Array.isArray(s['ports']) ? s['ports'].filter(isRecord) : [];
      const port =
        ports.find((p) => (p['name'] ?? undefined) === (portName ?? undefined)) ?? ports[0];
      if (typeof ip === 'string' && typeof port?.['port'] === 'number')
        return { ip, port: port['port'] };
    }
    return undefined;
  }

  #forward(
    client: Socket,
    svc: { ns: string; name: string; port: number },
    sockets: Set<Socket>,
  ): void {
    const target = this.#target(svc);
    if (target === undefined) {
      client.destroy();
      return;
    }
    const { ip: podIp, port } = target;
    const upstream = connect(port, podIp);
    sockets.add(client);
    sockets.add(upstream);
    const done = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', done).on('close', done);
    upstream.on('error', done).on('close', done);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
