// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';

import { uploadProxyUrl, type IngressLike, type RouteLike } from './upload-proxy-url.js';

const SVC = 'cdi-uploadproxy';
const pathIngress = (host: string, service = SVC): IngressLike => ({
  spec: { rules: [{ host, http: { paths: [{ backend: { service: { name: service } } }] } }] },
});
const defaultIngress = (host: string, service = SVC): IngressLike => ({
  spec: { defaultBackend: { service: { name: service } }, rules: [{ host }] },
});
const route = (host: string | undefined, service = SVC): RouteLike => ({
  spec: { to: { name: service } },
  status: { ingress: host === undefined ? [] : [{ host }] },
});

describe('uploadProxyUrl', () => {
  it.each<{
    what: string;
    override?: string;
    ingresses?: IngressLike[];
    routes?: RouteLike[];
    want: string | undefined;
  }>([
    { what: 'nothing', want: undefined },
    {
      what: 'the override wins over everything',
      override: 'https://upload.example',
      ingresses: [pathIngress('ing.example')],
      routes: [route('route.example')],
      want: 'https://upload.example',
    },
    {
      what: 'an Ingress before a Route (CDI reconciles Ingress first)',
      ingresses: [pathIngress('ing.example')],
      routes: [route('route.example')],
      want: 'ing.example',
    },
    {
      what: 'an empty override is no override',
      override: '',
      ingresses: [pathIngress('ing.example')],
      want: 'ing.example',
    },
    {
      what: 'an Ingress to another Service is skipped',
      ingresses: [pathIngress('other.example', 'web'), pathIngress('ing.example')],
      want: 'ing.example',
    },
    {
      what: 'a default backend to the Service gives the first rule’s host',
      ingresses: [defaultIngress('default.example')],
      want: 'default.example',
    },
    {
      what: 'a default backend to another Service hides its paths (as in CDI)',
      ingresses: [
        {
          spec: {
            defaultBackend: { service: { name: 'web' } },
            rules: [
              { host: 'x.example', http: { paths: [{ backend: { service: { name: SVC } } }] } },
            ],
          },
        },
      ],
      want: undefined,
    },
    {
      what: 'a rule without a host gives nothing',
      ingresses: [pathIngress('')],
      routes: [route('route.example')],
      want: 'route.example',
    },
    {
      what: 'a Route not yet admitted gives nothing',
      routes: [route(undefined), route('second.example')],
      want: 'second.example',
    },
    { what: 'a Route to another Service', routes: [route('r.example', 'web')], want: undefined },
  ])('$what', ({ override, ingresses, routes, want }) => {
    expect(
      uploadProxyUrl({ override, ingresses: ingresses ?? [], routes: routes ?? [], service: SVC }),
    ).toBe(want);
  });
});
