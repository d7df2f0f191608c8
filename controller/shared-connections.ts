// SPDX-License-Identifier: Apache-2.0
/**
 * One connection pool for every API call of a KubeConfig. @kubernetes/client-node 2.0 builds a
 * new undici Agent for each request (`KubeConfig.createDispatcher`), so each call opened its own
 * TLS connection: a handshake, a SecureContext and the peer certificate per request were half of
 * the controller's CPU at scale. Here the Agent of the first call is kept and handed to the
 * following calls while the TLS material they would use is the same; when it changes (a rotated
 * client certificate or CA), the new Agent replaces the old one, which closes once idle.
 */
import type { AgentOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

type RequestContext = Parameters<KubeConfig['applySecurityAuthentication']>[0];
type Dispatcher = NonNullable<ReturnType<RequestContext['getDispatcher']>>;

/** The fields of the TLS options that decide which connections may be shared. */
const TLS_FIELDS = [
  'ca',
  'cert',
  'key',
  'pfx',
  'passphrase',
  'servername',
  'rejectUnauthorized',
] as const satisfies readonly (keyof AgentOptions)[];

function sameValue(a: unknown, b: unknown): boolean {
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((v, i) => sameValue(v, b[i]));
  return a === b;
}

/** True when two sets of TLS options would make the same connections (pure). */
export function sameTls(a: AgentOptions, b: AgentOptions): boolean {
  return TLS_FIELDS.every((f) => sameValue(a[f], b[f]));
}

/** The KubeConfigs already changed (a controller restarted in-process reuses its own). */
const shared = new WeakSet<KubeConfig>();

/** Makes every API call made through `kc` share one connection pool (changes `kc`, once). */
export function shareConnections(kc: KubeConfig): KubeConfig {
  if (shared.has(kc)) return kc;
  shared.add(kc);
  let pooled: { readonly options: AgentOptions; readonly dispatcher: Dispatcher } | undefined;
  // client-node computes the options, builds the Agent and sets it on the request context in one
  // synchronous run: the options seen last are those of the Agent being set.
  let seen: AgentOptions | undefined;
  const dispatcherOptions = kc.createDispatcherOptions.bind(kc);
  kc.createDispatcherOptions = (cluster, agentOptions) => {
    seen = agentOptions;
    return dispatcherOptions(cluster, agentOptions);
  };
  const share = (fresh: Dispatcher): Dispatcher => {
    const options = seen;
    if (options === undefined) return fresh;
    if (pooled !== undefined && sameTls(pooled.options, options)) {
      // Never connected: closing it only releases the object.
      void fresh.close();
      return pooled.dispatcher;
    }
    const old = pooled;
    pooled = { options, dispatcher: fresh };
    // Lets requests still running on the old pool finish first.
    if (old !== undefined) void old.dispatcher.close();
    return fresh;
  };
  const apply = kc.applySecurityAuthentication.bind(kc);
  kc.applySecurityAuthentication = async (context) => {
    const set = context.setDispatcher.bind(context);
    context.setDispatcher = (dispatcher) => set(share(dispatcher));
    seen = undefined;
    await apply(context);
  };
  return kc;
}
