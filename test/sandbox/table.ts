// SPDX-License-Identifier: Apache-2.0
/**
 * Server-side printing: the `meta.k8s.io/v1` Table kubectl asks for (`Accept: ...;as=Table`).
 * Custom resources get their CRD's additionalPrinterColumns; built-ins the columns kubectl users
 * know (pods: Ready, Status, Restarts, Age; PVCs: Status, Volume, Capacity, ...).
 */
import { getPath, isRecord, str, type KObject } from './object.js';
import type { PrinterColumn, ResourceType } from './resources.js';

interface Column {
  readonly name: string;
  readonly type: string;
  readonly format?: string;
  readonly priority?: number;
  readonly cell: (obj: KObject) => unknown;
}

/** Kubernetes' short human duration (`5s`, `3m12s`, `4h`, `2d`). */
export function humanAge(fromIso: string | undefined, now = Date.now()): string {
  if (fromIso === undefined) return '<unknown>';
  const s = Math.max(0, Math.floor((now - Date.parse(fromIso)) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

function path(obj: KObject, dotted: string): unknown {
  return getPath(obj, dotted.replace(/^\./, '').split('.'));
}

function crdColumn(col: PrinterColumn): Column {
  return {
    name: col.name,
    type: col.type,
    priority: col.priority ?? 0,
    cell: (obj) => {
      const v = path(obj, col.jsonPath);
      if (col.type === 'date') return typeof v === 'string' ? humanAge(v) : '<unknown>';
      return v ?? null;
    },
  };
}

/** A count field, `fallback` when unset (a fresh Deployment has no status yet). */
function num(o: KObject, dotted: string, fallback = 0): number {
  const v = path(o, dotted);
  return typeof v === 'number' ? v : fallback;
}

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

const age: Column = {
  name: 'Age',
  type: 'string',
  cell: (o) => humanAge(o.metadata.creationTimestamp),
};

function podStatus(o: KObject): string {
  if (o.metadata.deletionTimestamp !== undefined) return 'Terminating';
  for (const cs of arr(path(o, 'status.containerStatuses'))) {
    if (!isRecord(cs) || !isRecord(cs['state'])) continue;
    const waiting = cs['state']['waiting'];
    const terminated = cs['state']['terminated'];
    if (isRecord(waiting) && typeof waiting['reason'] === 'string') return waiting['reason'];
    if (
      isRecord(terminated) &&
      typeof terminated['reason'] === 'string' &&
      path(o, 'status.phase') === 'Running'
    ) {
      return terminated['reason'];
    }
  }
  const phase = path(o, 'status.phase');
  if (phase === 'Succeeded') return 'Completed';
  if (phase === 'Failed') return 'Error';
  return typeof phase === 'string' ? phase : 'Pending';
}

const BUILTIN_COLUMNS: Readonly<Record<string, readonly Column[]>> = {
  Pod: [
    {
      name: 'Ready',
      type: 'string',
      cell: (o) => {
        const cs = arr(path(o, 'status.containerStatuses'));
        const ready = cs.filter((c) => isRecord(c) && c['ready'] === true).length;
        return `${ready}/${arr(path(o, 'spec.containers')).length}`;
      },
    },
    { name: 'Status', type: 'string', cell: podStatus },
    {
      name: 'Restarts',
      type: 'integer',
      cell: (o) =>
        arr(path(o, 'status.containerStatuses')).reduce<number>(
          (n, c) =>
            n + (isRecord(c) && typeof c['restartCount'] === 'number' ? c['restartCount'] : 0),
          0,
        ),
    },
    age,
    { name: 'IP', type: 'string', priority: 1, cell: (o) => path(o, 'status.podIP') ?? '<none>' },
  ],
  PersistentVolumeClaim: [
    { name: 'Status', type: 'string', cell: (o) => path(o, 'status.phase') ?? '' },
    { name: 'Volume', type: 'string', cell: (o) => path(o, 'spec.volumeName') ?? '' },
    { name: 'Capacity', type: 'string', cell: (o) => path(o, 'status.capacity.storage') ?? '' },
    {
      name: 'Access Modes',
      type: 'string',
      cell: (o) => arr(path(o, 'status.accessModes')).join(','),
    },
    {
      name: 'StorageClass',
      type: 'string',
      cell: (o) => path(o, 'spec.storageClassName') ?? '<unset>',
    },
    {
      name: 'VolumeMode',
      type: 'string',
      priority: 1,
      cell: (o) => path(o, 'spec.volumeMode') ?? 'Filesystem',
    },
    age,
  ],
  PersistentVolume: [
    { name: 'Capacity', type: 'string', cell: (o) => path(o, 'spec.capacity.storage') ?? '' },
    {
      name: 'Reclaim Policy',
      type: 'string',
      cell: (o) => path(o, 'spec.persistentVolumeReclaimPolicy') ?? '',
    },
    { name: 'Status', type: 'string', cell: (o) => path(o, 'status.phase') ?? '' },
    {
      name: 'Claim',
      type: 'string',
      cell: (o) => {
        const ns = path(o, 'spec.claimRef.namespace');
        const n = path(o, 'spec.claimRef.name');
        return typeof n === 'string' ? `${String(ns)}/${n}` : '';
      },
    },
    { name: 'StorageClass', type: 'string', cell: (o) => path(o, 'spec.storageClassName') ?? '' },
    age,
  ],
  StorageClass: [
    { name: 'Provisioner', type: 'string', cell: (o) => path(o, 'provisioner') ?? '' },
    { name: 'ReclaimPolicy', type: 'string', cell: (o) => path(o, 'reclaimPolicy') ?? 'Delete' },
    {
      name: 'VolumeBindingMode',
      type: 'string',
      cell: (o) => path(o, 'volumeBindingMode') ?? 'Immediate',
    },
    age,
  ],
  Service: [
    { name: 'Type', type: 'string', cell: (o) => path(o, 'spec.type') ?? 'ClusterIP' },
    { name: 'Cluster-IP', type: 'string', cell: (o) => path(o, 'spec.clusterIP') ?? '<none>' },
    {
      name: 'Port(s)',
      type: 'string',
      cell: (o) =>
        arr(path(o, 'spec.ports'))
          .map((p) => (isRecord(p) ? `${String(p['port'])}/${str(p['protocol'], 'TCP')}` : ''))
          .join(','),
    },
    age,
  ],
  Event: [
    {
      name: 'Last Seen',
      type: 'string',
      cell: (o) =>
        humanAge(
          typeof o['lastTimestamp'] === 'string'
            ? o['lastTimestamp']
            : o.metadata.creationTimestamp,
        ),
    },
    { name: 'Type', type: 'string', cell: (o) => o['type'] ?? '' },
    { name: 'Reason', type: 'string', cell: (o) => o['reason'] ?? '' },
    {
      name: 'Object',
      type: 'string',
      cell: (o) =>
        `${str(path(o, 'involvedObject.kind')).toLowerCase()}/${str(path(o, 'involvedObject.name'))}`,
    },
    { name: 'Message', type: 'string', cell: (o) => o['message'] ?? '' },
  ],
  Deployment: [
    {
      name: 'Ready',
      type: 'string',
      cell: (o) => `${num(o, 'status.readyReplicas')}/${num(o, 'spec.replicas', 1)}`,
    },
    { name: 'Up-to-date', type: 'integer', cell: (o) => num(o, 'status.updatedReplicas') },
    { name: 'Available', type: 'integer', cell: (o) => num(o, 'status.availableReplicas') },
    age,
  ],
  ReplicaSet: [
    { name: 'Desired', type: 'integer', cell: (o) => num(o, 'spec.replicas', 1) },
    { name: 'Current', type: 'integer', cell: (o) => num(o, 'status.replicas') },
    { name: 'Ready', type: 'integer', cell: (o) => num(o, 'status.readyReplicas') },
    age,
  ],
  Endpoints: [
    {
      name: 'Endpoints',
      type: 'string',
      cell: (o) => {
        const out: string[] = [];
        for (const sub of arr(path(o, 'subsets'))) {
          if (!isRecord(sub)) continue;
          for (const a of arr(sub['addresses']))
            for (const p of arr(sub['ports']))
              if (isRecord(a) && isRecord(p)) out.push(`${str(a['ip'])}:${String(p['port'])}`);
        }
        return out.length === 0 ? '<none>' : out.join(',');
      },
    },
    age,
  ],
  Namespace: [
    { name: 'Status', type: 'string', cell: (o) => path(o, 'status.phase') ?? 'Active' },
    age,
  ],
  Node: [
    { name: 'Status', type: 'string', cell: () => 'Ready' },
    { name: 'Roles', type: 'string', cell: () => '<none>' },
    age,
    {
      name: 'Version',
      type: 'string',
      cell: (o) => path(o, 'status.nodeInfo.kubeletVersion') ?? '',
    },
  ],
};

function columnsOf(type: ResourceType): readonly Column[] {
  const extra = type.custom
    ? (type.printerColumns ?? []).map(crdColumn)
    : (BUILTIN_COLUMNS[type.kind] ?? [age]);
  const hasAge = extra.some((c) => c.name === 'Age');
  const name: Column = {
    name: 'Name',
    type: 'string',
    format: 'name',
    cell: (o) => o.metadata.name ?? '',
  };
  // kube-apiserver prints an Event's name last and only with -o wide.
  if (type.kind === 'Event') return [...extra, { ...name, priority: 1 }];
  return [name, ...extra, ...(type.custom && !hasAge ? [age] : [])];
}

/** Renders objects as a Table; `withHeaders` false leaves out the column definitions (watch events). */
export function toTable(
  type: ResourceType,
  objects: readonly KObject[],
  opts: { readonly resourceVersion?: string; readonly withHeaders?: boolean } = {},
): Record<string, unknown> {
  const columns = columnsOf(type);
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: opts.resourceVersion === undefined ? {} : { resourceVersion: opts.resourceVersion },
    columnDefinitions:
      opts.withHeaders === false
        ? []
        : columns.map((c) => ({
            name: c.name,
            type: c.type,
            format: c.format ?? '',
            description: '',
            priority: c.priority ?? 0,
          })),
    rows: objects.map((o) => ({ cells: columns.map((c) => c.cell(o)), object: o })),
  };
}

/** True when the Accept header asks for a Table. */
export function wantsTable(accept: string | undefined): boolean {
  return accept !== undefined && /as=Table/.test(accept);
}
