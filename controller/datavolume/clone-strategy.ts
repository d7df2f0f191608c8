// SPDX-License-Identifier: Apache-2.0
/**
 * Which way a clone copies its data (CDI `clone/planner.go` `ChooseStrategy`), pure. The strategy
 * asked for is the CDI resource's `cloneStrategyOverride`, else the target class's StorageProfile
 * `cloneStrategy`, else `snapshot`. A storage-side strategy (`snapshot`, `csi-clone`) falls back
 * to the host-assisted copy, with CDI's reason and message, when the storage cannot do it: no
 * VolumeSnapshotClass for the source's driver, different provisioners, different volume modes,
 * or a larger target on a class that cannot expand. A clone from a VolumeSnapshot (source
 * `snapshot`) restores it when the snapshot's driver is the target class's provisioner, the modes
 * match and the size fits.
 */

/** CDI's clone strategies (`cloneStrategy`, `cloneStrategyOverride`). */
export const CloneStrategies = {
  Copy: 'copy',
  Snapshot: 'snapshot',
  CsiClone: 'csi-clone',
} as const;
/** One of {@link CloneStrategies}. */
export type CloneStrategy = (typeof CloneStrategies)[keyof typeof CloneStrategies];

/** CDI's fallback reasons and messages (`planner.go`). */
export const FallbackReasons = {
  NoVolumeSnapshotClass: {
    reason: 'NoVolumeSnapshotClass',
    message: 'No compatible volumesnapshotclass found',
  },
  IncompatibleVolumeModes: {
    reason: 'IncompatibleVolumeModes',
    message: 'The volume modes of source and target are incompatible',
  },
  NoVolumeExpansion: { reason: 'NoVolumeExpansion', message: 'No volume expansion is possible' },
  NoProvisionerMatch: {
    reason: 'NoProvisionerMatch',
    message: 'The storageclass provisioner does not match the volumesnapshotcontent driver',
  },
  IncompatibleProvisioners: {
    reason: 'IncompatibleProvisioners',
    message: 'Provisioners are incompatible',
  },
  /**
   * Ours: CDI moves a storage-side clone into another namespace by rebinding its volume; here a
   * clone across namespaces is the network clone (ADR 0022).
   */
  CrossNamespace: {
    reason: 'CrossNamespaceClone',
    message: 'A clone into another namespace copies through the network clone',
  },
} as const;

/** Why a storage-side strategy was not used. */
export interface Fallback {
  readonly reason: string;
  readonly message: string;
}

/** The strategy chosen, and why it is `copy` when another was asked for. */
export interface StrategyChoice {
  readonly strategy: CloneStrategy;
  readonly fallback?: Fallback;
}

/** One side of a clone as the strategy sees it. */
export interface CloneSide {
  readonly namespace: string;
  /** The class's provisioner (undefined when the class is unknown). */
  readonly provisioner: string | undefined;
  readonly block: boolean;
  /** Source: the claim's capacity; target: the rendered request. */
  readonly bytes: number | undefined;
}

/** Inputs of {@link chooseStrategy} for a clone of a claim. */
export interface ClaimStrategyInput {
  /** The CDI resource's `spec.cloneStrategyOverride`. */
  readonly override?: string | undefined;
  /** The target class's StorageProfile `status.cloneStrategy`. */
  readonly profileStrategy?: string | undefined;
  readonly source: CloneSide;
  readonly target: CloneSide;
  /** The target class allows volume expansion. */
  readonly targetExpands: boolean;
  /** The VolumeSnapshotClass a snapshot clone would use (undefined: none is compatible). */
  readonly snapshotClass: string | undefined;
}

function known(strategy: string | undefined): CloneStrategy | undefined {
  return Object.values(CloneStrategies).find((s) => s === strategy);
}

/** The strategy asked for: the override, else the profile's, else `snapshot` (CDI's default). */
export function askedStrategy(
  override: string | undefined,
  profileStrategy: string | undefined,
): CloneStrategy {
  return known(override) ?? known(profileStrategy) ?? CloneStrategies.Snapshot;
}

const copy = (fallback: Fallback): StrategyChoice => ({ strategy: CloneStrategies.Copy, fallback });

/** Chooses how a clone of a claim copies (CDI `computeStrategyForSourcePVC`). */
export function chooseStrategy(input: ClaimStrategyInput): StrategyChoice {
  const strategy = askedStrategy(input.override, input.profileStrategy);
  if (strategy === CloneStrategies.Copy) return { strategy };
  const { source, target } = input;
  const F = FallbackReasons;
  if (source.namespace !== target.namespace) return copy(F.CrossNamespace);
  if (strategy === CloneStrategies.Snapshot && input.snapshotClass === undefined)
    return copy(F.NoVolumeSnapshotClass);
  if (source.provisioner === undefined || source.provisioner !== target.provisioner)
    return copy(F.IncompatibleProvisioners);
  if (source.block !== target.block) return copy(F.IncompatibleVolumeModes);
  if (source.bytes === undefined || target.bytes === undefined) return copy(F.NoVolumeExpansion);
  if (source.bytes < target.bytes && !input.targetExpands) return copy(F.NoVolumeExpansion);
  return { strategy };
}

/** What a clone from a VolumeSnapshot knows of it (its content's driver and mode). */
export interface SnapshotSide {
  readonly driver: string | undefined;
  readonly block: boolean;
  /** `status.restoreSize`. */
  readonly bytes: number | undefined;
}

/** Inputs of {@link chooseSnapshotStrategy}. */
export interface SnapshotStrategyInput {
  readonly snapshot: SnapshotSide;
  readonly target: Omit<CloneSide, 'namespace'>;
  readonly targetExpands: boolean;
}

/** Chooses how a clone of a VolumeSnapshot copies (CDI `computeStrategyForSourceSnapshot`). */
export function chooseSnapshotStrategy(input: SnapshotStrategyInput): StrategyChoice {
  const { snapshot, target } = input;
  const F = FallbackReasons;
  if (snapshot.driver === undefined || snapshot.driver !== target.provisioner)
    return copy(F.NoProvisionerMatch);
  if (snapshot.bytes !== undefined && target.bytes !== undefined) {
    if (target.bytes < snapshot.bytes) return copy(F.NoVolumeExpansion);
    if (target.bytes > snapshot.bytes && !input.targetExpands) return copy(F.NoVolumeExpansion);
  }
  if (snapshot.block !== target.block) return copy(F.IncompatibleVolumeModes);
  return { strategy: CloneStrategies.Snapshot };
}

/** A VolumeSnapshotClass as the choice of one needs it. */
export interface SnapshotClassView {
  readonly name: string;
  readonly driver: string;
  readonly isDefault: boolean;
}

/**
 * The VolumeSnapshotClass for a snapshot of a claim of `provisioner` (CDI
 * `GetCompatibleVolumeSnapshotClass`): the profile's `snapshotClass` when it exists with that
 * driver, else the default class of that driver, else the only one (first by name).
 */
export function compatibleSnapshotClass(
  classes: readonly SnapshotClassView[],
  provisioner: string | undefined,
  profileClass: string | undefined,
): string | undefined {
  const usable = classes.filter((c) => c.driver === provisioner);
  if (profileClass !== undefined && profileClass !== '')
    return usable.find((c) => c.name === profileClass)?.name;
  const byName = [...usable].sort((a, b) => a.name.localeCompare(b.name));
  return (byName.find((c) => c.isDefault) ?? byName[0])?.name;
}
