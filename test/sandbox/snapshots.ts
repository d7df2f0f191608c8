// SPDX-License-Identifier: Apache-2.0
/**
 * The snapshot controller and the hostPath driver's snapshot part (external-snapshotter plus a
 * CSI driver's CREATE_SNAPSHOT). A VolumeSnapshot of a bound claim whose class (named, or the
 * default VolumeSnapshotClass) has the sandbox's driver gets a point-in-time copy of the claim's
 * volume and a VolumeSnapshotContent `snapcontent-<uid>`; then its status says `readyToUse`,
 * `restoreSize` (the volume's capacity) and `boundVolumeSnapshotContentName`. A content whose
 * snapshot is gone is removed with its copy when its deletion policy is Delete.
 * {@link snapshotVolume} tells the provisioner where a ready snapshot's data is, so that a claim
 * with a VolumeSnapshot `dataSource` starts from it.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../common/logger.js';
import { parseQuantity } from '../../common/quantity.js';
import { PROVISIONER, Types } from './cluster.js';
import { recordEvent } from './events.js';
import type { ObjectApi } from './object-api.js';
import { getPath, isRecord, type KObject } from './object.js';
import { typeKey, type ResourceType } from './resources.js';
import { copyVolume, textOf } from './volume-copy.js';
import { SweepLoop } from './sweep-loop.js';

/** The snapshot API group and version. */
export const SNAPSHOT_GROUP = 'snapshot.storage.k8s.io';
const SNAPSHOT_API = `${SNAPSHOT_GROUP}/v1`;
/** The annotation marking the default VolumeSnapshotClass. */
export const DEFAULT_SNAPSHOT_CLASS = 'snapshot.storage.kubernetes.io/is-default-class';

/** The snapshot API's type keys (registered once its CRDs are applied). */
export const SnapshotTypes = {
  Snapshots: typeKey(SNAPSHOT_GROUP, 'volumesnapshots'),
  Contents: typeKey(SNAPSHOT_GROUP, 'volumesnapshotcontents'),
  Classes: typeKey(SNAPSHOT_GROUP, 'volumesnapshotclasses'),
} as const;

/** Where a ready snapshot's data lives. */
export interface SnapshotVolume {
  readonly path: string;
  readonly bytes: number;
  readonly block: boolean;
}

function type(api: ObjectApi, key: string): ResourceType | undefined {
  return api.types.get(key);
}

/** The data of the ready snapshot `namespace/name`; undefined while it is missing or not ready. */
export function snapshotVolume(
  api: ObjectApi,
  namespace: string,
  name: string,
): SnapshotVolume | undefined {
  const vsType = type(api, SnapshotTypes.Snapshots);
  const contentType = type(api, SnapshotTypes.Contents);
  if (vsType === undefined || contentType === undefined) return undefined;
  const vs = api.find(vsType, namespace, name);
  if (vs === undefined || getPath(vs, ['status', 'readyToUse']) !== true) return undefined;
  const contentName = getPath(vs, ['status', 'boundVolumeSnapshotContentName']);
  if (typeof contentName !== 'string') return undefined;
  const content = api.find(contentType, '', contentName);
  const path = content === undefined ? undefined : getPath(content, ['status', 'snapshotHandle']);
  const bytes = content === undefined ? undefined : getPath(content, ['status', 'restoreSize']);
  if (typeof path !== 'string' || typeof bytes !== 'number' || content === undefined)
    return undefined;
  return { path, bytes, block: getPath(content, ['spec', 'sourceVolumeMode']) === 'Block' };
}

/** Options of {@link SnapshotController}. */
export interface SnapshotControllerOptions {
  readonly api: ObjectApi;
  /** Where snapshot copies live. */
  readonly dataDir: string;
  readonly log: Logger;
}

const SWEEP_DELAY_MS = 10;

/** The snapshot controller with the hostPath driver's snapshots. */
export class SnapshotController {
  readonly #loop: SweepLoop;
  /** Snapshot UIDs whose copy is running. */
  readonly #copying = new Set<string>();
  /** Snapshot UIDs told why they cannot be taken (one event each). */
  readonly #refused = new Set<string>();

  constructor(private readonly opts: SnapshotControllerOptions) {
    mkdirSync(opts.dataDir, { recursive: true });
    this.#loop = new SweepLoop({
      sweep: () => this.#sweep(),
      delayMs: SWEEP_DELAY_MS,
      log: opts.log,
      failure: 'snapshot sweep failed',
      level: 'warn',
      retry: true,
    });
  }

  /** Starts reacting to snapshot, content and claim changes. */
  start(): void {
    const watched = new Set<string>([
      SnapshotTypes.Snapshots,
      SnapshotTypes.Contents,
      SnapshotTypes.Classes,
      Types.Pvcs,
    ]);
    this.#loop.follow(this.opts.api.store, (e) => watched.has(e.typeKey));
    this.#loop.schedule();
  }

  /** Stops. */
  stop(): void {
    this.#loop.stop();
  }

  #sweep(): void {
    const { api } = this.opts;
    const vsType = type(api, SnapshotTypes.Snapshots);
    const contentType = type(api, SnapshotTypes.Contents);
    const classType = type(api, SnapshotTypes.Classes);
    if (vsType === undefined || contentType === undefined || classType === undefined) return;
    for (const vs of api.list(vsType, undefined).items) {
      if (vs.metadata.deletionTimestamp !== undefined) continue;
      if (getPath(vs, ['status', 'boundVolumeSnapshotContentName']) !== undefined) continue;
      this.#take(vs, { vsType, contentType, classType });
    }
    this.#removeOrphans(vsType, contentType);
  }

  #classFor(vs: KObject, classType: ResourceType): KObject | undefined {
    const named = getPath(vs, ['spec', 'volumeSnapshotClassName']);
    const classes = this.opts.api.list(classType, undefined).items;
    if (typeof named === 'string' && named !== '')
      return classes.find((c) => c.metadata.name === named);
    return classes.find(
      (c) =>
        c.metadata.annotations?.[DEFAULT_SNAPSHOT_CLASS] === 'true' && c['driver'] === PROVISIONER,
    );
  }

  #refuse(vs: KObject, message: string): void {
    const uid = vs.metadata.uid ?? '';
    if (this.#refused.has(uid)) return;
    this.#refused.add(uid);
    recordEvent(this.opts.api, vs, {
      type: 'Warning',
      reason: 'SnapshotCreationFailed',
      message,
      component: 'snapshot-controller',
    });
  }

  #take(
    vs: KObject,
    t: { vsType: ResourceType; contentType: ResourceType; classType: ResourceType },
  ): void {
    const { api, log } = this.opts;
    const uid = vs.metadata.uid ?? '';
    if (this.#copying.has(uid)) return;
    const ns = vs.metadata.namespace ?? '';
    const claimName = getPath(vs, ['spec', 'source', 'persistentVolumeClaimName']);
    if (typeof claimName !== 'string') return;
    const cls = this.#classFor(vs, t.classType);
    if (cls === undefined || cls['driver'] !== PROVISIONER) {
      this.#refuse(vs, 'Failed to get snapshot class with error: no usable VolumeSnapshotClass');
      return;
    }
    const pvcType = api.types.get(Types.Pvcs);
    const pvType = api.types.get(Types.Pvs);
    if (pvcType === undefined || pvType === undefined) return;
    const pvc = api.find(pvcType, ns, claimName);
    if (pvc === undefined || getPath(pvc, ['status', 'phase']) !== 'Bound') return;
    const pv = api.find(pvType, '', textOf(getPath(pvc, ['spec', 'volumeName'])));
    const source = pv === undefined ? undefined : getPath(pv, ['spec', 'hostPath', 'path']);
    const capacity = pv === undefined ? undefined : getPath(pv, ['spec', 'capacity', 'storage']);
    if (pv === undefined || typeof source !== 'string' || capacity === undefined) return;
    const contentName = `snapcontent-${uid}`;
    const path = join(this.opts.dataDir, contentName);
    const block = getPath(pv, ['spec', 'volumeMode']) === 'Block';
    this.#copying.add(uid);
    rmSync(path, { recursive: true, force: true });
    copyVolume(source, path)
      .then(() => {
        const now = new Date();
        api.create(t.contentType, '', {
          apiVersion: SNAPSHOT_API,
          kind: 'VolumeSnapshotContent',
          metadata: { name: contentName },
          spec: {
            driver: PROVISIONER,
            deletionPolicy:
              typeof cls['deletionPolicy'] === 'string' ? cls['deletionPolicy'] : 'Delete',
            source: { volumeHandle: pv.metadata.name ?? '' },
            sourceVolumeMode: block ? 'Block' : 'Filesystem',
            volumeSnapshotClassName: cls.metadata.name ?? '',
            volumeSnapshotRef: {
              apiVersion: SNAPSHOT_API,
              kind: 'VolumeSnapshot',
              namespace: ns,
              name: vs.metadata.name ?? '',
              uid,
            },
          },
        });
        const content = api.find(t.contentType, '', contentName);
        if (content !== undefined) {
          api.update(
            t.contentType,
            '',
            contentName,
            {
              ...content,
              status: {
                snapshotHandle: path,
                readyToUse: true,
                restoreSize: parseQuantity(textOf(capacity)),
                creationTime: now.getTime() * 1_000_000,
              },
            },
            { subresource: 'status' },
          );
        }
        const current = api.find(t.vsType, ns, vs.metadata.name ?? '');
        if (current === undefined || current.metadata.uid !== uid) return;
        api.update(
          t.vsType,
          ns,
          current.metadata.name ?? '',
          {
            ...current,
            status: {
              boundVolumeSnapshotContentName: contentName,
              creationTime: now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
              readyToUse: true,
              restoreSize: textOf(capacity),
            },
          },
          { subresource: 'status' },
        );
        log.debug('snapshot taken', { snapshot: `${ns}/${vs.metadata.name ?? ''}`, path });
      })
      .catch((err: unknown) => {
        rmSync(path, { recursive: true, force: true });
        this.#refuse(
          vs,
          `Failed to create snapshot: ${err instanceof Error ? err.message : String(err)}`,
        );
      })
      .finally(() => {
        this.#copying.delete(uid);
        this.#loop.schedule();
      });
  }

  /** Contents whose snapshot is gone: Delete policy removes them and their copy. */
  #removeOrphans(vsType: ResourceType, contentType: ResourceType): void {
    const { api } = this.opts;
    for (const content of api.list(contentType, undefined).items) {
      const ref = getPath(content, ['spec', 'volumeSnapshotRef']);
      if (!isRecord(ref)) continue;
      const vs = api.find(vsType, String(ref['namespace']), String(ref['name']));
      if (vs !== undefined && vs.metadata.uid === ref['uid']) continue;
      if (getPath(content, ['spec', 'deletionPolicy']) !== 'Delete') continue;
      const path = getPath(content, ['status', 'snapshotHandle']);
      if (typeof path === 'string' && path.startsWith(this.opts.dataDir))
        rmSync(path, { recursive: true, force: true });
      api.delete(contentType, '', content.metadata.name ?? '');
    }
  }
}
