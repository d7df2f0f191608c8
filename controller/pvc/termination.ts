// SPDX-License-Identifier: Apache-2.0
/**
 * Reading an importer's termination message (CDI `import-controller.go` `updatePVCAnnotations`,
 * `parseTerminationMessage`): JSON on success, one plain line on failure. Which failures are
 * terminal is decided here, by our error code when the message carries one and otherwise by the
 * text markers the Go CDI matches (`IsNoCapacityError` strings, "checksum mismatch"). Pure.
 */
import type { TerminationMessage } from '../../common/contract.js';
import { ErrorCodes } from '../../common/errors.js';
import {
  ConditionMessages,
  ConditionReasons,
  type ConditionReason,
} from '../../common/api/phases.js';

/** What the controller concludes from one container termination. */
export interface TerminationVerdict {
  /** Exit 0 and no terminal marker. */
  readonly succeeded: boolean;
  /** No more pods: the DataVolume fails. */
  readonly terminal: boolean;
  /** The importer asks for a scratch volume and should be re-run with one. */
  readonly scratchSpaceRequired: boolean;
  readonly preallocationApplied: boolean;
  /** Running condition reason and message to show. */
  readonly reason: ConditionReason;
  readonly message: string;
  /** Labels to copy to the claim (registry `*_KUBEVIRT_IO_*`). */
  readonly labels: Readonly<Record<string, string>>;
}

const CAPACITY_MARKERS = [
  'is larger than the reported available',
  'exceeds available space',
  'no space left on device',
  'disk quota exceeded',
  'file largest block is bigger than maxblock',
] as const;

const CHECKSUM_MARKER = 'checksum mismatch';

const CAPACITY_CODES: ReadonlySet<string> = new Set([
  ErrorCodes.SizeValidation,
  ErrorCodes.NoSpace,
]);

/** Parses a termination message as CDI's JSON, or undefined when it is plain text. */
export function parseTerminationJson(text: string): TerminationMessage | undefined {
  const trimmed = text.trim();
  if (!trimmed.startsWith('{')) return undefined;
  try {
    const parsed: unknown = JSON.parse(trimmed);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? parsed
      : undefined;
  } catch {
    return undefined;
  }
}

function firstLine(text: string): string {
  return (text.split('\n').find((l) => l.trim() !== '') ?? '').trim();
}

function stringLabels(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null) return {};
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).filter(
      (e): e is [string, string] => typeof e[1] === 'string',
    ),
  );
}

interface LogRecord {
  readonly level?: unknown;
  readonly msg: string;
}

/**
 * With `terminationMessagePolicy: FallbackToLogsOnError`, a process killed before it wrote its
 * message leaves the tail of its log instead: our JSON log lines. Picks the last error record's
 * text, else says how the process ended and what it logged last. Undefined for other text.
 */
function messageFromLogTail(text: string, exitCode: number): string | undefined {
  const records: LogRecord[] = [];
  for (const line of text.split('\n')) {
    const parsed = parseTerminationJson(line) as Record<string, unknown> | undefined;
    if (parsed !== undefined && typeof parsed['msg'] === 'string') {
      records.push({ level: parsed['level'], msg: parsed['msg'] });
    }
  }
  if (records.length === 0) return undefined;
  const error = records.filter((r) => r.level === 'error').at(-1);
  if (error !== undefined) return error.msg;
  return `importer exited with code ${exitCode}; last log: ${records.at(-1)?.msg ?? ''}`;
}

/** Judges one termination: exit code plus message (possibly empty). */
export function judgeTermination(exitCode: number, text: string | undefined): TerminationVerdict {
  const raw = text ?? '';
  const logMessage = exitCode === 0 ? undefined : messageFromLogTail(raw, exitCode);
  const json = logMessage === undefined ? parseTerminationJson(raw) : undefined;
  const message = logMessage ?? json?.message ?? firstLine(raw);
  const code = json?.code;
  const lower = message.toLowerCase();
  const checksum = code === ErrorCodes.ChecksumMismatch || lower.includes(CHECKSUM_MARKER);
  const capacity =
    (code !== undefined && CAPACITY_CODES.has(code)) ||
    CAPACITY_MARKERS.some((m) => lower.includes(m));
  const base = {
    scratchSpaceRequired: false,
    preallocationApplied: json?.preallocationApplied === true,
    labels: stringLabels(json?.labels),
  };
  if (checksum) {
    return {
      ...base,
      succeeded: false,
      terminal: true,
      reason: ConditionReasons.ChecksumError,
      message,
    };
  }
  if (capacity) {
    return {
      ...base,
      succeeded: false,
      terminal: true,
      reason: ConditionReasons.Error,
      message: ConditionMessages.TooSmall,
    };
  }
  if (exitCode === 0 && json?.scratchSpaceRequired === true) {
    return {
      ...base,
      succeeded: false,
      terminal: false,
      scratchSpaceRequired: true,
      reason: ConditionReasons.ScratchSpaceRequired,
      message: ConditionMessages.ScratchRequired,
    };
  }
  if (exitCode === 0) {
    return {
      ...base,
      succeeded: true,
      terminal: false,
      reason: ConditionReasons.Completed,
      message: message === '' ? ConditionMessages.ImportComplete : message,
    };
  }
  return {
    ...base,
    succeeded: false,
    terminal: false,
    reason: ConditionReasons.Error,
    message: message === '' ? `importer exited with code ${exitCode}` : message,
  };
}
