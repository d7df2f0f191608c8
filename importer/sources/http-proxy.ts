// SPDX-License-Identifier: Apache-2.0
/**
 * Which proxy a request goes through, with Go's `httpproxy` rules (what the Go CDI importer and
 * registry client follow): `http://` targets use `http_proxy` only, `https://` targets use
 * `https_proxy` only (undici's EnvHttpProxyAgent would send HTTPS through `http_proxy` too), and
 * `no_proxy` entries may be `*`, IP addresses, CIDR blocks (common in OpenShift's cluster-wide
 * Proxy: cluster and service networks), `host`, `.suffix`, `*.suffix`, each with an optional
 * `:port`. One deliberate difference: loopback targets are not exempt (Go exempts them), because
 * the sandbox cluster gives every pod a 127.x address and its proxy tests must go through.
 */
import { BlockList, isIP } from 'node:net';

/** Proxy settings (CDIConfig `importProxy`, env `http_proxy`/`https_proxy`/`no_proxy`). */
export interface ProxyOptions {
  /** Proxy for `http://` targets, e.g. `http://user:pass@proxy:3128`. */
  readonly httpProxy?: string;
  /** Proxy for `https://` targets (tunnelled with CONNECT). */
  readonly httpsProxy?: string;
  /** Comma- or space-separated exemptions: `*`, IPs, CIDRs, `host`, `.suffix`, with `:port`. */
  readonly noProxy?: string;
}

/** Decides whether a host:port is exempt from the proxy. */
export type NoProxyMatcher = (hostname: string, port: number) => boolean;

interface DomainRule {
  /** Lower-case, with a leading dot. */
  readonly suffix: string;
  /** `host` entries also match the host itself, `.host` ones only subdomains. */
  readonly matchSelf: boolean;
  /** 0 = any port. */
  readonly port: number;
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function splitPort(entry: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(entry);
  return m === null ? { host: entry, port: 0 } : { host: m[1] ?? entry, port: Number(m[2]) };
}

/** Parses a `no_proxy` value into a matcher (Go `httpproxy.Config.init`). */
export function parseNoProxy(value: string): NoProxyMatcher {
  const ips = new BlockList();
  const domains: DomainRule[] = [];
  let all = false;
  for (const raw of value.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') {
      all = true;
      continue;
    }
    const slash = entry.indexOf('/');
    if (slash > 0) {
      const net = entry.slice(0, slash);
      const bits = Number(entry.slice(slash + 1));
      const family = isIP(net);
      if (family !== 0 && Number.isInteger(bits))
        ips.addSubnet(net, bits, family === 4 ? 'ipv4' : 'ipv6');
      continue;
    }
    const bare = stripBrackets(entry);
    if (isIP(bare) !== 0) {
      ips.addAddress(bare, isIP(bare) === 4 ? 'ipv4' : 'ipv6');
      continue;
    }
    const { host, port } = splitPort(entry);
    const h = stripBrackets(host);
    if (isIP(h) !== 0) {
      // An IP with a port: Go compares the IP only.
      ips.addAddress(h, isIP(h) === 4 ? 'ipv4' : 'ipv6');
      continue;
    }
    const trimmed = h.startsWith('*.') ? h.slice(1) : h;
    domains.push({
      suffix: trimmed.startsWith('.') ? trimmed : `.${trimmed}`,
      matchSelf: !trimmed.startsWith('.'),
      port,
    });
  }
  return (hostname, port) => {
    if (all) return true;
    const host = stripBrackets(hostname.toLowerCase());
    const family = isIP(host);
    if (family !== 0) return ips.check(host, family === 4 ? 'ipv4' : 'ipv6');
    return domains.some(
      (d) =>
        (d.port === 0 || d.port === port) &&
        (host.endsWith(d.suffix) || (d.matchSelf && host === d.suffix.slice(1))),
    );
  };
}

const DEFAULT_PORTS: Readonly<Record<string, number>> = { 'http:': 80, 'https:': 443 };

/** The proxy URL for a target origin, or undefined to connect directly. */
export function proxyFor(
  origin: URL,
  proxy: ProxyOptions,
  noProxy: NoProxyMatcher,
): string | undefined {
  const uri =
    origin.protocol === 'https:'
      ? proxy.httpsProxy
      : origin.protocol === 'http:'
        ? proxy.httpProxy
        : undefined;
  if (uri === undefined || uri === '') return undefined;
  const port = origin.port === '' ? (DEFAULT_PORTS[origin.protocol] ?? 0) : Number(origin.port);
  return noProxy(origin.hostname, port) ? undefined : uri;
}
