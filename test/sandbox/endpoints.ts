// SPDX-License-Identifier: Apache-2.0
/**
 * The endpoints and endpoint-slice controllers: every Service with a selector gets an Endpoints
 * object of the same name and one EndpointSlice (`<service>-<suffix>`, labelled
 * `kubernetes.io/service-name`) listing the pods it selects, ready ones as addresses and the
 * others as not-ready addresses, with the Service's ports resolved to container ports. Services
 * without a selector keep the Endpoints their owner writes (as `default/kubernetes` does).
 */
import type { Logger } from '../../common/logger.js';
import { Types } from './cluster.js';
import type { ObjectApi } from './object-api.js';
import { getPath, isRecord, str, type KObject } from './object.js';
import type { ResourceType } from './resources.js';
import { matchesLabelMap } from './selectors.js';
import { isActivePod, isReadyPod } from './workloads.js';
import { SweepLoop } from './sweep-loop.js';

/** Label tying an EndpointSlice to its Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
const MANAGED_BY = 'endpointslice.kubernetes.io/managed-by';

/** A Service port resolved for one pod. */
interface EndpointPort {
  readonly name?: string;
  readonly port: number;
  readonly protocol: string;
}

/** The port number `target` (a number or a container port's name) means in `pod`. */
export function resolveTargetPort(pod: KObject, target: unknown): number | undefined {
  if (typeof target === 'number') return target;
  if (typeof target === 'string' && /^\d+$/.test(target)) return Number(target);
  const containers = getPath(pod, ['spec', 'containers']);
  for (const c of Array.isArray(containers) ? containers : []) {
    const ports = getPath(c, ['ports']);
    for (const p of Array.isArray(ports) ? ports : []) {
      if (isRecord(p) && p['name'] === target && typeof p['containerPort'] === 'number')
        return p['containerPort'];
    }
  }
  return undefined;
}

function portsFor(svc: KObject, pod: KObject | undefined): EndpointPort[] {
  const ports = getPath(svc, ['spec', 'ports']);
  const out: EndpointPort[] = [];
  for (const p of Array.isArray(ports) ? ports.filter(isRecord) : []) {
    const target = p['targetPort'] ?? p['port'];
    const port = pod === undefined ? undefined : resolveTargetPort(pod, target);
    if (port === undefined) continue;
    out.push({
      ...(typeof p['name'] === 'string' ? { name: p['name'] } : {}),
      port,
      protocol: typeof p['protocol'] === 'string' ? p['protocol'] : 'TCP',
    });
  }
  return out;
}

/** The Endpoints object and EndpointSlice body of a Service (pure). */
export function endpointsFor(
  svc: KObject,
  pods: readonly KObject[],
): { endpoints: Record<string, unknown>; slice: Record<string, unknown> } {
  const selector = getPath(svc, ['spec', 'selector']) as Record<string, string>;
  const selected = pods.filter(
    (p) =>
      isActivePod(p) &&
      matchesLabelMap(selector, p.metadata.labels) &&
      typeof getPath(p, ['status', 'podIP']) === 'string',
  );
  const address = (p: KObject): Record<string, unknown> => ({
    ip: String(getPath(p, ['status', 'podIP'])),
    nodeName: str(getPath(p, ['spec', 'nodeName'])),
    targetRef: {
      kind: 'Pod',
      namespace: p.metadata.namespace ?? '',
      name: p.metadata.name ?? '',
      uid: p.metadata.uid ?? '',
    },
  });
  const ready = selected.filter(isReadyPod);
  const notReady = selected.filter((p) => !isReadyPod(p));
  const ports = portsFor(svc, selected[0]);
  const subsets =
    selected.length === 0
      ? []
      : [
          {
            ...(ready.length > 0 ? { addresses: ready.map(address) } : {}),
            ...(notReady.length > 0 ? { notReadyAddresses: notReady.map(address) } : {}),
            ports,
          },
        ];
  const slice = {
    addressType: 'IPv4',
    endpoints: selected.map((p) => {
      const { ip, nodeName, targetRef } = address(p);
      return {
        addresses: [ip],
        conditions: { ready: isReadyPod(p), serving: isReadyPod(p), terminating: false },
        nodeName,
        targetRef,
      };
    }),
    ports,
  };
  return { endpoints: { subsets }, slice };
}

/** Keeps Endpoints and EndpointSlices in step with Services and pods. */
export class EndpointsController {
  readonly #types: {
    services: ResourceType;
    pods: ResourceType;
    endpoints: ResourceType;
    slices: ResourceType;
  };
  readonly #loop: SweepLoop;

  constructor(
    private readonly api: ObjectApi,
    log: Logger,
  ) {
    const get = (key: string): ResourceType => {
      const t = api.types.get(key);
      if (t === undefined) throw new Error(`type ${key} missing`);
      return t;
    };
    this.#types = {
      services: get(Types.Services),
      pods: get(Types.Pods),
      endpoints: get(Types.Endpoints),
      slices: get(Types.EndpointSlices),
    };
    this.#loop = new SweepLoop({
      sweep: () => this.#sync(),
      delayMs: 10,
      log,
      failure: 'endpoints sync failed',
      level: 'debug',
      retry: true,
    });
  }

  /** Starts following Services and pods. */
  start(): void {
    this.#loop.follow(
      this.api.store,
      (e) => e.typeKey === Types.Services || e.typeKey === Types.Pods,
    );
    this.#loop.schedule();
  }

  /** Stops following. */
  stop(): void {
    this.#loop.stop();
  }

  #sync(): void {
    const { services, pods, endpoints, slices } = this.#types;
    for (const svc of this.api.list(services, undefined).items) {
      if (!isRecord(getPath(svc, ['spec', 'selector']))) continue;
      if (svc.metadata.deletionTimestamp !== undefined) continue;
      const ns = svc.metadata.namespace ?? '';
      const name = svc.metadata.name ?? '';
      const want = endpointsFor(svc, this.api.list(pods, ns).items);
      const owner = {
        apiVersion: 'v1',
        kind: 'Service',
        name,
        uid: svc.metadata.uid ?? '',
        controller: true,
        blockOwnerDeletion: true,
      };
      const ep = this.api.find(endpoints, ns, name);
      if (ep === undefined) {
        this.api.create(endpoints, ns, {
          apiVersion: 'v1',
          kind: 'Endpoints',
          metadata: {
            name,
            namespace: ns,
            labels: { ...svc.metadata.labels },
            // The endpoints controller deletes them with the Service; here the collector does.
            ownerReferences: [{ ...owner, controller: false }],
          },
          ...want.endpoints,
        });
      } else if (
        JSON.stringify(ep['subsets'] ?? []) !== JSON.stringify(want.endpoints['subsets'])
      ) {
        this.api.update(endpoints, ns, name, { ...ep, ...want.endpoints });
      }
      const slice = this.api
        .list(slices, ns)
        .items.find((s) => s.metadata.ownerReferences?.some((r) => r.uid === svc.metadata.uid));
      if (slice === undefined) {
        this.api.create(slices, ns, {
          apiVersion: 'discovery.k8s.io/v1',
          kind: 'EndpointSlice',
          metadata: {
            generateName: `${name}-`,
            namespace: ns,
            labels: {
              [SERVICE_NAME_LABEL]: name,
              [MANAGED_BY]: 'endpointslice-controller.k8s.io',
            },
            ownerReferences: [owner],
          },
          ...want.slice,
        });
      } else if (
        JSON.stringify([slice['endpoints'], slice['ports']]) !==
        JSON.stringify([want.slice['endpoints'], want.slice['ports']])
      ) {
        this.api.update(slices, ns, slice.metadata.name ?? '', { ...slice, ...want.slice });
      }
    }
  }
}
