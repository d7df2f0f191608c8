// SPDX-License-Identifier: Apache-2.0
/**
 * Where users reach the upload proxy: CDIConfig `status.uploadProxyURL`, as CDI's config
 * controller finds it (`config-controller.go`): the `uploadProxyURLOverride`, else the host of
 * the first Ingress in CDI's namespace that routes to the upload proxy Service, else the admitted
 * host of the first OpenShift Route to it; none: unset. Pure.
 */

/** The fields of a `networking.k8s.io/v1` Ingress read here. */
export interface IngressLike {
  readonly metadata?: { readonly name?: string };
  readonly spec?: {
    readonly defaultBackend?: { readonly service?: { readonly name?: string } };
    readonly rules?: readonly {
      readonly host?: string;
      readonly http?: {
        readonly paths?: readonly {
          readonly backend?: { readonly service?: { readonly name?: string } };
        }[];
      };
    }[];
  };
}

/** The fields of a `route.openshift.io/v1` Route read here. */
export interface RouteLike {
  readonly metadata?: { readonly name?: string };
  readonly spec?: { readonly to?: { readonly name?: string } };
  readonly status?: { readonly ingress?: readonly { readonly host?: string }[] };
}

function nonEmpty(text: string | undefined): string | undefined {
  return text === undefined || text === '' ? undefined : text;
}

/**
 * The host an Ingress gives the Service: with a default backend, the first rule's host when that
 * backend is the Service (and nothing otherwise); else the host of the first rule with a path to it.
 */
export function hostFromIngress(ingress: IngressLike, service: string): string | undefined {
  const spec = ingress.spec;
  const fallback = spec?.defaultBackend?.service;
  if (fallback !== undefined) {
    return fallback.name === service ? nonEmpty(spec?.rules?.[0]?.host) : undefined;
  }
  for (const rule of spec?.rules ?? []) {
    const routes = (rule.http?.paths ?? []).some((p) => p.backend?.service?.name === service);
    if (routes && nonEmpty(rule.host) !== undefined) return rule.host;
  }
  return undefined;
}

/** The host a Route to the Service was admitted with (its first `status.ingress`). */
export function hostFromRoute(route: RouteLike, service: string): string | undefined {
  if (route.spec?.to?.name !== service) return undefined;
  return nonEmpty(route.status?.ingress?.[0]?.host);
}

/** What decides the URL. */
export interface UploadProxyExposure {
  readonly override: string | undefined;
  /** Ingresses of CDI's namespace, in list order. */
  readonly ingresses: readonly IngressLike[];
  /** Routes of CDI's namespace, in list order (none where the Route API is not served). */
  readonly routes: readonly RouteLike[];
  /** The upload proxy's Service name. */
  readonly service: string;
}

/** CDI's order: the override, then an Ingress, then a Route; undefined when none gives a URL. */
export function uploadProxyUrl(e: UploadProxyExposure): string | undefined {
  const override = nonEmpty(e.override);
  if (override !== undefined) return override;
  for (const ingress of e.ingresses) {
    const host = hostFromIngress(ingress, e.service);
    if (host !== undefined) return host;
  }
  for (const route of e.routes) {
    const host = hostFromRoute(route, e.service);
    if (host !== undefined) return host;
  }
  return undefined;
}
