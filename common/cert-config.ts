// SPDX-License-Identifier: Apache-2.0
/**
 * The lifetimes of the PKI's certificates, from the CDI resource's `spec.certConfig` as CDI's
 * operator reads it: `ca` for the signers, `server` for serving certificates (the token API's, the
 * upload proxy's and each upload server's), `client` for client certificates (the upload proxy's
 * and a network clone's); each a Go `duration` and a `renewBefore` (renew once less than that is
 * left). Unset fields keep this controller's defaults. Pure.
 */
import { parseDuration } from './duration.js';

/** Lifetime of one certificate class (Go durations, e.g. `48h`), as users write it. */
export interface CertConfig {
  duration?: string;
  renewBefore?: string;
}

/** The CDI resource's `spec.certConfig`. */
export interface CdiCertConfig {
  ca?: CertConfig;
  server?: CertConfig;
  client?: CertConfig;
}

const DAY_MS = 86_400_000;

/** One certificate class's lifetime and when to renew it. */
export interface CertLifetime {
  readonly lifetimeMs: number;
  /** Renew once less than this is left. */
  readonly renewBeforeMs: number;
}

/** The three classes. */
export interface PkiLifetimes {
  readonly ca: CertLifetime;
  readonly server: CertLifetime;
  readonly client: CertLifetime;
}

/** Without a certConfig: signers a year, leaves 90 days, renewed once a fifth is left (ADR 0011). */
export const DEFAULT_LIFETIMES: PkiLifetimes = Object.freeze({
  ca: Object.freeze({ lifetimeMs: 365 * DAY_MS, renewBeforeMs: 73 * DAY_MS }),
  server: Object.freeze({ lifetimeMs: 90 * DAY_MS, renewBeforeMs: 18 * DAY_MS }),
  client: Object.freeze({ lifetimeMs: 90 * DAY_MS, renewBeforeMs: 18 * DAY_MS }),
});

/** What is wrong with one class's settings, if anything (messages name the field). */
export function certConfigProblems(config: CdiCertConfig | undefined): string[] {
  const problems: string[] = [];
  for (const cls of ['ca', 'server', 'client'] as const) {
    const c = config?.[cls];
    if (c === undefined || c === null) continue;
    const parsed = parseClass(c, DEFAULT_LIFETIMES[cls]);
    for (const p of parsed.problems) problems.push(`spec.certConfig.${cls}.${p}`);
  }
  return problems;
}

function parseClass(
  c: CertConfig,
  fallback: CertLifetime,
): { lifetime: CertLifetime; problems: string[] } {
  const problems: string[] = [];
  const read = (field: 'duration' | 'renewBefore'): number | undefined => {
    const text = c[field];
    if (text === undefined || text === null || text === '') return undefined;
    try {
      const ms = parseDuration(String(text));
      if (ms > 0) return ms;
      problems.push(`${field} must be positive, got ${JSON.stringify(text)}`);
    } catch {
      problems.push(`${field}: ${JSON.stringify(text)} is not a duration (e.g. 48h, 90m)`);
    }
    return undefined;
  };
  const duration = read('duration');
  const renewBefore = read('renewBefore');
  const lifetimeMs = duration ?? fallback.lifetimeMs;
  // A new duration without a renewBefore keeps the default proportion (renew at a fifth left).
  const renewBeforeMs =
    renewBefore ??
    (duration === undefined
      ? fallback.renewBeforeMs
      : Math.round((lifetimeMs * fallback.renewBeforeMs) / fallback.lifetimeMs));
  if (renewBefore !== undefined && renewBefore >= lifetimeMs) {
    problems.push(
      `renewBefore (${String(c.renewBefore)}) must be shorter than duration (${String(c.duration ?? `${Math.round(lifetimeMs / 3_600_000)}h`)})`,
    );
  }
  return { lifetime: { lifetimeMs, renewBeforeMs }, problems };
}

/** The lifetimes a certConfig asks for; a class with a problem keeps its defaults. */
export function resolveLifetimes(config: CdiCertConfig | undefined): PkiLifetimes {
  const one = (cls: keyof PkiLifetimes): CertLifetime => {
    const c = config?.[cls];
    if (c === undefined || c === null) return DEFAULT_LIFETIMES[cls];
    const parsed = parseClass(c, DEFAULT_LIFETIMES[cls]);
    return parsed.problems.length === 0 ? parsed.lifetime : DEFAULT_LIFETIMES[cls];
  };
  return { ca: one('ca'), server: one('server'), client: one('client') };
}

/** Go's `time.Duration.String()` of whole seconds and more (`48h0m0s`, `1h30m0s`, `90s` → `1m30s`). */
export function goDuration(ms: number): string {
  const totalSeconds = Math.round(ms / 1000);
  const h = Math.floor(totalSeconds / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const s = totalSeconds % 60;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

/**
 * The annotation CDI's operator keeps on each certificate Secret (`{"lifetime","refresh"}`, Go
 * durations, refresh = lifetime - renewBefore): a certificate issued under other settings is
 * reissued when they change.
 */
export const CERT_CONFIG_ANNOTATION = 'operator.cdi.kubevirt.io/certConfig';

/** The annotation's value for a lifetime. */
export function certConfigAnnotation(l: CertLifetime): string {
  return JSON.stringify({
    lifetime: goDuration(l.lifetimeMs),
    refresh: goDuration(l.lifetimeMs - l.renewBeforeMs),
  });
}
