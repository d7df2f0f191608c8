// SPDX-License-Identifier: Apache-2.0
/**
 * A container's capability set from its `securityContext.capabilities`, as containerd's CRI
 * plugin computes it for the kubelet: the runtime's default set, minus `drop`, plus `add`;
 * `ALL` in `drop` starts from nothing, `ALL` in `add` grants every capability; names are given
 * with or without the `CAP_` prefix. Unknown names are refused as containerd refuses them.
 */

/** Every Linux capability (capability.h, up to CAP_CHECKPOINT_RESTORE), in bit order. */
export const ALL_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
];

/** containerd's (and Docker's) default set for a container that asks for nothing. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

function names(value: unknown): string[] {
  return Array.isArray(value) ? value.map((v) => String(v).toUpperCase()) : [];
}

function canonical(name: string): string {
  const full = name.startsWith('CAP_') ? name : `CAP_${name}`;
  if (!ALL_CAPABILITIES.includes(full)) throw new Error(`unknown capability "${name}"`);
  return full;
}

/** The set of `securityContext` (a container's), in bit order. */
export function capabilitiesOf(securityContext: Record<string, unknown>): string[] {
  const caps = securityContext['capabilities'];
  const c = typeof caps === 'object' && caps !== null ? (caps as Record<string, unknown>) : {};
  const add = names(c['add']);
  const drop = names(c['drop']);
  if (add.includes('ALL')) return [...ALL_CAPABILITIES];
  const set = new Set(drop.includes('ALL') ? [] : DEFAULT_CAPABILITIES);
  for (const name of drop) if (name !== 'ALL') set.delete(canonical(name));
  for (const name of add) set.add(canonical(name));
  return ALL_CAPABILITIES.filter((cap) => set.has(cap));
}

/** The `CapEff` mask of /proc/PID/status for a set (hexadecimal, 16 digits). */
export function capabilityMask(set: readonly string[]): string {
  let mask = 0n;
  for (const cap of set) mask |= 1n << BigInt(ALL_CAPABILITIES.indexOf(canonical(cap)));
  return mask.toString(16).padStart(16, '0');
}
