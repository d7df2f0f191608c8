// SPDX-License-Identifier: Apache-2.0
/**
 * The hostPath provisioner and PV binder. A PVC of a sandbox StorageClass is bound to a new PV
 * whose `spec.hostPath.path` is a directory (Filesystem mode) or a sparse file of the requested
 * size standing in for the device (Block mode). WaitForFirstConsumer claims wait for the
 * `volume.kubernetes.io/selected-node` annotation, which the scheduler part sets when a pod using
 * the claim appears. PVC protection: a deleted PVC stays until no running pod uses it. Reclaim
 * policy Delete removes the PV and its data when the claim goes.
 * A claim whose `dataSourceRef`/`dataSource` names a VolumeSnapshot or another claim of the same
 * namespace starts from a copy of that source's data, as a CSI driver's CREATE_VOLUME from a
 * content source does: the size must be at least the source's, a larger Block volume is grown,
 * and it waits while the snapshot is not ready or the claim not bound. A bound claim whose
 * request grows is expanded when its class has `allowVolumeExpansion`.
 */
import { closeSync, mkdirSync, openSync, ftruncateSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Annotations } from '../../common/contract.js';
import { parseQuantity } from '../../common/quantity.js';
import type { Logger } from '../../common/logger.js';
import { NODE_NAME, PROVISIONER, PVC_PROTECTION, Types } from './cluster.js';
import { recordEvent } from './events.js';
import { snapshotVolume, SNAPSHOT_GROUP, type SnapshotVolume } from './snapshots.js';
import { copyVolume, growVolume, textOf } from './volume-copy.js';
import type { ObjectApi } from './object-api.js';
import { clone, getPath, isRecord, type KObject } from './object.js';
import type { ResourceType } from './resources.js';
import { SweepLoop } from './sweep-loop.js';

/** Options of {@link Provisioner}. */
export interface ProvisionerOptions {
  readonly api: ObjectApi;
  /** Where volumes live. */
  readonly dataDir: string;
  readonly log: Logger;
}

const SWEEP_DELAY_MS = 10;

/**
 * A second provisioner name the same driver serves, so that tests have classes of different
 * provisioners (a storage-side clone between them is impossible).
 */
export const OTHER_PROVISIONER = 'sandbox.cdi.kubevirt.io/hostpath-other';
const PROVISIONERS: ReadonlySet<unknown> = new Set([PROVISIONER, OTHER_PROVISIONER]);

/** Claims a pod uses (by name, in the pod's namespace). */
export function podClaims(pod: KObject): string[] {
  const volumes = getPath(pod, ['spec', 'volumes']);
  if (!Array.isArray(volumes)) return [];
  return volumes.flatMap((v) => {
    const claim = getPath(v, ['persistentVolumeClaim', 'claimName']);
    return typeof claim === 'string' ? [claim] : [];
  });
}

function isTerminal(pod: KObject): boolean {
  const phase = getPath(pod, ['status', 'phase']);
  return phase === 'Succeeded' || phase === 'Failed';
}

/** The provisioner. */
export class Provisioner {
  readonly #loop: SweepLoop;
  readonly #t: { pvc: ResourceType; pv: ResourceType; sc: ResourceType; pod: ResourceType };
  /** Claim UIDs whose volume is being copied from their data source. */
  readonly #copying = new Set<string>();
  /** Claim UIDs whose volume holds their data source's copy. */
  readonly #copied = new Set<string>();
  /** Claim UIDs told why their data source cannot be used (one event each). */
  readonly #refused = new Set<string>();

  constructor(private readonly opts: ProvisionerOptions) {
    const t = (key: string): ResourceType => {
      const type = opts.api.types.get(key);
      if (type === undefined) throw new Error(`missing type ${key}`);
      return type;
    };
    this.#t = {
      pvc: t(Types.Pvcs),
      pv: t(Types.Pvs),
      sc: t(Types.StorageClasses),
      pod: t(Types.Pods),
    };
    mkdirSync(opts.dataDir, { recursive: true });
    this.#loop = new SweepLoop({
      sweep: () => this.#sweep(),
      delayMs: SWEEP_DELAY_MS,
      log: opts.log,
      failure: 'provisioner sweep failed',
      level: 'warn',
      retry: true,
    });
  }

  /** Starts reacting to PVC, PV, pod and StorageClass changes. */
  start(): void {
    const watched = new Set<string>([Types.Pvcs, Types.Pvs, Types.Pods, Types.StorageClasses]);
    this.#loop.follow(this.opts.api.store, (e) => watched.has(e.typeKey));
    this.#loop.schedule();
  }

  /** Stops. */
  stop(): void {
    this.#loop.stop();
  }

  #sweep(): void {
    const { api } = this.opts;
    const pods = api.list(this.#t.pod, undefined).items;
    const inUse = new Set<string>();
    for (const pod of pods) {
      for (const claim of podClaims(pod)) {
        const key = `${pod.metadata.namespace ?? ''}/${claim}`;
        if (!isTerminal(pod)) inUse.add(key);
        this.#selectNode(pod.metadata.namespace ?? '', claim);
      }
    }
    for (const pvc of api.list(this.#t.pvc, undefined).items) {
      const key = `${pvc.metadata.namespace ?? ''}/${pvc.metadata.name ?? ''}`;
      if (pvc.metadata.deletionTimestamp !== undefined) {
        if (!inUse.has(key) && (pvc.metadata.finalizers ?? []).includes(PVC_PROTECTION)) {
          const next = clone(pvc);
          next.metadata.finalizers = (next.metadata.finalizers ?? []).filter(
            (f) => f !== PVC_PROTECTION,
          );
          api.update(this.#t.pvc, next.metadata.namespace ?? '', next.metadata.name ?? '', next);
        }
        continue;
      }
      if (
        getPath(pvc, ['status', 'phase']) === 'Pending' &&
        getPath(pvc, ['spec', 'volumeName']) === undefined
      ) {
        this.#provision(pvc);
      } else if (getPath(pvc, ['status', 'phase']) === 'Bound') this.#expand(pvc);
    }
    this.#reclaim();
  }

  /** The scheduler's part for WaitForFirstConsumer: pick the (only) node for the claim. */
  #selectNode(namespace: string, claim: string): void {
    const pvc = this.opts.api.find(this.#t.pvc, namespace, claim);
    if (pvc === undefined || getPath(pvc, ['status', 'phase']) !== 'Pending') return;
    if (pvc.metadata.annotations?.[Annotations.SelectedNode] !== undefined) return;
    const sc = this.#classOf(pvc);
    if (sc?.['volumeBindingMode'] !== 'WaitForFirstConsumer') return;
    const next = clone(pvc);
    next.metadata.annotations = {
      ...next.metadata.annotations,
      [Annotations.SelectedNode]: NODE_NAME,
    };
    this.opts.api.update(this.#t.pvc, namespace, claim, next);
  }

  #classOf(pvc: KObject): KObject | undefined {
    const name = getPath(pvc, ['spec', 'storageClassName']);
    return typeof name === 'string' && name !== ''
      ? this.opts.api.find(this.#t.sc, '', name)
      : undefined;
  }

  #provision(pvc: KObject): void {
    const { api, log } = this.opts;
    const sc = this.#classOf(pvc);
    if (sc === undefined || !PROVISIONERS.has(sc['provisioner'])) return;
    const provisioner = textOf(sc['provisioner']);
    const ns = pvc.metadata.namespace ?? '';
    const name = pvc.metadata.name ?? '';
    const wffc = sc['volumeBindingMode'] === 'WaitForFirstConsumer';
    if (wffc && pvc.metadata.annotations?.[Annotations.SelectedNode] === undefined) {
      const annotated = pvc.metadata.annotations?.['sandbox.cdi.kubevirt.io/wffc-event'];
      if (annotated === undefined) {
        recordEvent(api, pvc, {
          type: 'Normal',
          reason: 'WaitForFirstConsumer',
          message: 'waiting for first consumer to be created before binding',
          component: 'persistentvolume-controller',
        });
        const next = clone(pvc);
        next.metadata.annotations = {
          ...next.metadata.annotations,
          'sandbox.cdi.kubevirt.io/wffc-event': 'true',
        };
        api.update(this.#t.pvc, ns, name, next);
      }
      return;
    }
    const requested = getPath(pvc, ['spec', 'resources', 'requests', 'storage']);
    if (typeof requested !== 'string' && typeof requested !== 'number') return;
    const bytes = parseQuantity(textOf(requested));
    const block = getPath(pvc, ['spec', 'volumeMode']) === 'Block';
    const pvName = `pvc-${pvc.metadata.uid ?? ''}`;
    const path = join(this.opts.dataDir, pvName);
    const fromSource = this.#dataSource(pvc);
    if (fromSource !== undefined) {
      if (!this.#populate(pvc, fromSource, { path, bytes, block })) return;
    } else if (block) {
      const fd = openSync(path, 'w');
      try {
        ftruncateSync(fd, bytes);
      } finally {
        closeSync(fd);
      }
    } else mkdirSync(path, { recursive: true });
    const accessModes = getPath(pvc, ['spec', 'accessModes']) ?? ['ReadWriteOnce'];
    const pv = api.create(this.#t.pv, '', {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: {
        name: pvName,
        annotations: { 'pv.kubernetes.io/provisioned-by': provisioner },
        finalizers: ['kubernetes.io/pv-protection'],
      },
      spec: {
        capacity: { storage: textOf(requested) },
        accessModes,
        volumeMode: block ? 'Block' : 'Filesystem',
        hostPath: { path, type: block ? 'File' : 'Directory' },
        claimRef: {
          apiVersion: 'v1',
          kind: 'PersistentVolumeClaim',
          namespace: ns,
          name,
          uid: pvc.metadata.uid,
        },
        persistentVolumeReclaimPolicy:
          typeof sc['reclaimPolicy'] === 'string' ? sc['reclaimPolicy'] : 'Delete',
        storageClassName: sc.metadata.name,
        nodeAffinity: {
          required: {
            nodeSelectorTerms: [
              {
                matchExpressions: [
                  { key: 'kubernetes.io/hostname', operator: 'In', values: [NODE_NAME] },
                ],
              },
            ],
          },
        },
      },
    });
    api.update(
      this.#t.pv,
      '',
      pvName,
      { ...pv, status: { phase: 'Bound' } },
      { subresource: 'status' },
    );
    const next = clone(pvc);
    next.metadata.annotations = {
      ...next.metadata.annotations,
      'pv.kubernetes.io/bind-completed': 'yes',
      'pv.kubernetes.io/bound-by-controller': 'yes',
      'volume.kubernetes.io/storage-provisioner': provisioner,
      'volume.beta.kubernetes.io/storage-provisioner': provisioner,
    };
    (next['spec'] as Record<string, unknown>)['volumeName'] = pvName;
    const updated = api.update(this.#t.pvc, ns, name, next);
    api.update(
      this.#t.pvc,
      ns,
      name,
      {
        ...updated,
        status: { phase: 'Bound', accessModes, capacity: { storage: textOf(requested) } },
      },
      { subresource: 'status' },
    );
    recordEvent(api, pvc, {
      type: 'Normal',
      reason: 'ProvisioningSucceeded',
      message: `Successfully provisioned volume ${pvName}`,
      component: PROVISIONER,
    });
    log.debug('bound', { pvc: `${ns}/${name}`, pv: pvName, path, bytes });
  }

  /**
   * The data a claim starts from: none (undefined), a source not usable yet (`wait`), a source
   * that never will be (a message), or where the source's data is.
   */
  #dataSource(pvc: KObject): SnapshotVolume | 'wait' | { refused: string } | undefined {
    const ref =
      getPath(pvc, ['spec', 'dataSourceRef']) ?? getPath(pvc, ['spec', 'dataSource']) ?? undefined;
    if (!isRecord(ref)) return undefined;
    const ns = pvc.metadata.namespace ?? '';
    const name = textOf(ref['name']);
    const group = textOf(ref['apiGroup']);
    if (ref['kind'] === 'VolumeSnapshot' && group === SNAPSHOT_GROUP) {
      return snapshotVolume(this.opts.api, ns, name) ?? 'wait';
    }
    if (ref['kind'] !== 'PersistentVolumeClaim' || group !== '') return undefined;
    const source = this.opts.api.find(this.#t.pvc, ns, name);
    if (source === undefined || getPath(source, ['status', 'phase']) !== 'Bound') return 'wait';
    const provisioner = this.#classOf(pvc)?.['provisioner'];
    if (this.#classOf(source)?.['provisioner'] !== provisioner)
      return { refused: `the source claim ${name} is not provisioned by ${textOf(provisioner)}` };
    const pv = this.opts.api.find(this.#t.pv, '', textOf(getPath(source, ['spec', 'volumeName'])));
    const path = pv === undefined ? undefined : getPath(pv, ['spec', 'hostPath', 'path']);
    const capacity = pv === undefined ? undefined : getPath(pv, ['spec', 'capacity', 'storage']);
    if (typeof path !== 'string' || capacity === undefined) return 'wait';
    return {
      path,
      bytes: parseQuantity(textOf(capacity)),
      block: getPath(pv, ['spec', 'volumeMode']) === 'Block',
    };
  }

  /**
   * Fills a new volume from its claim's data source; true once the copy is there (the claim can
   * bind), false while it waits or runs, or when the source cannot be used.
   */
  #populate(
    pvc: KObject,
    source: SnapshotVolume | 'wait' | { refused: string },
    target: { path: string; bytes: number; block: boolean },
  ): boolean {
    const uid = pvc.metadata.uid ?? '';
    if (this.#copied.has(uid)) return true;
    if (source === 'wait' || this.#copying.has(uid)) return false;
    let refusal = 'refused' in source ? source.refused : undefined;
    if (!('refused' in source)) {
      if (source.block !== target.block)
        refusal = "the volume mode of the source differs from the claim's";
      else if (target.bytes < source.bytes)
        refusal = `requested volume size ${target.bytes} is less than the size ${source.bytes} of the source`;
    }
    if (refusal !== undefined || 'refused' in source) {
      if (!this.#refused.has(uid)) {
        this.#refused.add(uid);
        recordEvent(this.opts.api, pvc, {
          type: 'Warning',
          reason: 'ProvisioningFailed',
          message: `failed to provision volume with StorageClass: ${refusal ?? ''}`,
          component: PROVISIONER,
        });
      }
      return false;
    }
    this.#copying.add(uid);
    rmSync(target.path, { recursive: true, force: true });
    copyVolume(source.path, target.path)
      .then(() => {
        if (target.block) growVolume(target.path, target.bytes);
        this.#copied.add(uid);
      })
      .catch((err: unknown) => {
        this.opts.log.warn('copy from the data source failed', {
          error: err instanceof Error ? err.message : String(err),
        });
        rmSync(target.path, { recursive: true, force: true });
      })
      .finally(() => {
        this.#copying.delete(uid);
        this.#loop.schedule();
      });
    return false;
  }

  /** Grows a bound claim's volume to its larger request when its class allows expansion. */
  #expand(pvc: KObject): void {
    const requested = getPath(pvc, ['spec', 'resources', 'requests', 'storage']);
    const capacity = getPath(pvc, ['status', 'capacity', 'storage']);
    if (requested === undefined || capacity === undefined) return;
    const want = parseQuantity(textOf(requested));
    if (want <= parseQuantity(textOf(capacity))) return;
    if (this.#classOf(pvc)?.['allowVolumeExpansion'] !== true) return;
    const { api } = this.opts;
    const pvName = textOf(getPath(pvc, ['spec', 'volumeName']));
    const pv = api.find(this.#t.pv, '', pvName);
    const path = pv === undefined ? undefined : getPath(pv, ['spec', 'hostPath', 'path']);
    if (pv === undefined || typeof path !== 'string') return;
    growVolume(path, want);
    const nextPv = clone(pv);
    (nextPv['spec'] as Record<string, unknown>)['capacity'] = { storage: textOf(requested) };
    api.update(this.#t.pv, '', pvName, nextPv);
    const ns = pvc.metadata.namespace ?? '';
    const name = pvc.metadata.name ?? '';
    const status = isRecord(pvc['status']) ? pvc['status'] : {};
    api.update(
      this.#t.pvc,
      ns,
      name,
      { ...pvc, status: { ...status, capacity: { storage: textOf(requested) } } },
      { subresource: 'status' },
    );
    recordEvent(api, pvc, {
      type: 'Normal',
      reason: 'VolumeResizeSuccessful',
      message: `ResizeVolume succeeded for volume "${pvName}"`,
      component: 'external-resizer',
    });
  }

  /** PVs whose claim is gone: Delete policy removes them and their data; Retain releases them. */
  #reclaim(): void {
    const { api } = this.opts;
    for (const pv of api.list(this.#t.pv, undefined).items) {
      const ref = getPath(pv, ['spec', 'claimRef']);
      if (!isRecord(ref) || getPath(pv, ['status', 'phase']) !== 'Bound') continue;
      const pvc = api.find(this.#t.pvc, String(ref['namespace']), String(ref['name']));
      if (pvc !== undefined && pvc.metadata.uid === ref['uid']) continue;
      const name = pv.metadata.name ?? '';
      if (getPath(pv, ['spec', 'persistentVolumeReclaimPolicy']) === 'Delete') {
        const path = getPath(pv, ['spec', 'hostPath', 'path']);
        if (typeof path === 'string' && path.startsWith(this.opts.dataDir))
          rmSync(path, { recursive: true, force: true });
        const next = clone(pv);
        delete next.metadata.finalizers;
        api.update(this.#t.pv, '', name, next);
        if (api.find(this.#t.pv, '', name) !== undefined) api.delete(this.#t.pv, '', name);
      } else {
        api.update(
          this.#t.pv,
          '',
          name,
          { ...pv, status: { phase: 'Released' } },
          { subresource: 'status' },
        );
      }
    }
  }
}
