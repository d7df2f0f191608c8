// SPDX-License-Identifier: Apache-2.0
/**
 * Label selectors (`a=b,c!=d,e in (x,y),f notin (z),g,!h`) and field selectors
 * (`metadata.name=x,status.phase!=Running`), parsed once per request into predicates.
 */
import { getPath, type KObject } from './object.js';

/** A parsed selector. */
export type Selector = (obj: KObject) => boolean;

/** A selector that cannot be parsed (answered with 400 BadRequest). */
export class SelectorError extends Error {
  override readonly name = 'SelectorError';
}

function splitTerms(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth += 1;
    if (ch === ')') depth -= 1;
    if (ch === ',' && depth === 0) {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (cur.trim() !== '') out.push(cur.trim());
  return out.filter((t) => t !== '');
}

function labelTerm(term: string): (labels: Record<string, string>) => boolean {
  const set = /^([^\s!=]+)\s+(in|notin)\s+\((.*)\)$/.exec(term);
  if (set !== null) {
    const [, key = '', op, list = ''] = set;
    const values = new Set(list.split(',').map((v) => v.trim()));
    return op === 'in'
      ? (l) => l[key] !== undefined && values.has(l[key])
      : (l) => l[key] === undefined || !values.has(l[key]);
  }
  const cmp = /^([^\s!=]+)\s*(==|=|!=)\s*(\S*)$/.exec(term);
  if (cmp !== null) {
    const [, key = '', op, value = ''] = cmp;
    return op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value;
  }
  if (/^![^\s!=]+$/.test(term)) return (l) => l[term.slice(1)] === undefined;
  if (/^[^\s!=(),]+$/.test(term)) return (l) => l[term] !== undefined;
  throw new SelectorError(`unable to parse requirement: ${JSON.stringify(term)}`);
}

/** Parses a label selector; an empty one matches everything. */
export function parseLabelSelector(text: string | undefined): Selector {
  if (text === undefined || text.trim() === '') return () => true;
  const terms = splitTerms(text).map(labelTerm);
  return (obj) => {
    const labels = obj.metadata.labels ?? {};
    return terms.every((t) => t(labels));
  };
}

function fieldValue(obj: KObject, path: string): string {
  const v = getPath(obj, path.split('.'));
  if (v === undefined || v === null) return '';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/**
 * Parses a field selector. Any dotted path is accepted (a real server accepts only a few per
 * kind, `metadata.name`, `metadata.namespace` and kind-specific ones such as `status.phase`).
 */
export function parseFieldSelector(text: string | undefined): Selector {
  if (text === undefined || text.trim() === '') return () => true;
  const terms = splitTerms(text).map((term): Selector => {
    const m = /^([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (m === null) throw new SelectorError(`invalid field selector: ${JSON.stringify(term)}`);
    const [, path = '', op, value = ''] = m;
    return op === '!='
      ? (o) => fieldValue(o, path) !== value
      : (o) => fieldValue(o, path) === value;
  });
  return (obj) => terms.every((t) => t(obj));
}

/** Matches a `matchLabels`/`matchExpressions` LabelSelector object or a plain map (Service). */
export function matchesLabelMap(
  selector: Record<string, string>,
  labels: Record<string, string> | undefined,
): boolean {
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}
