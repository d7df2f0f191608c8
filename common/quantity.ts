// SPDX-License-Identifier: Apache-2.0
import { CdiError, ErrorCodes } from './errors.js';

const SUFFIX_MULTIPLIERS: Readonly<Record<string, bigint>> = {
  '': 1n,
  Ki: 1024n,
  Mi: 1024n ** 2n,
  Gi: 1024n ** 3n,
  Ti: 1024n ** 4n,
  Pi: 1024n ** 5n,
  Ei: 1024n ** 6n,
  k: 1000n,
  K: 1000n,
  M: 1000n ** 2n,
  G: 1000n ** 3n,
  T: 1000n ** 4n,
  P: 1000n ** 5n,
  E: 1000n ** 6n,
};

/**
 * Parses a Kubernetes quantity (`10Gi`, `1.5G`, `1048576`) into bytes, rounding a fraction up as
 * Kubernetes does for byte quantities. Throws `CDI_INVALID_ARGUMENT` on anything else.
 */
export function parseQuantity(text: string): number {
  const m = /^\s*(\d+)(?:\.(\d+))?\s*(Ki|Mi|Gi|Ti|Pi|Ei|k|K|M|G|T|P|E)?\s*$/.exec(text);
  if (m === null) {
    throw new CdiError(ErrorCodes.InvalidArgument, `invalid quantity ${JSON.stringify(text)}`);
  }
  const whole = BigInt(m[1] ?? '0');
  const fraction = m[2] ?? '';
  const multiplier = SUFFIX_MULTIPLIERS[m[3] ?? ''] ?? 1n;
  const scale = 10n ** BigInt(fraction.length);
  const numerator = (whole * scale + BigInt(fraction === '' ? '0' : fraction)) * multiplier;
  const bytes = (numerator + scale - 1n) / scale;
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new CdiError(ErrorCodes.InvalidArgument, `quantity ${text} is too large`);
  }
  return Number(bytes);
}

/** Formats bytes in binary units with up to one decimal: `20Gi`, `9.5Gi`, `512Mi`, `100`. */
export function formatBytes(bytes: number): string {
  const units = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi'] as const;
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const rounded = Math.round(value * 10) / 10;
  return `${Number.isInteger(rounded) ? rounded.toFixed(0) : rounded.toFixed(1)}${units[unit] ?? ''}`;
}
