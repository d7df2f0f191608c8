// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';

import { parseNoProxy, proxyFor, type ProxyOptions } from './http-proxy.js';

describe('parseNoProxy (Go httpproxy rules)', () => {
  it.each([
    { what: 'the wildcard', noProxy: '*', host: 'anything.example', port: 80, want: true },
    {
      what: 'an exact host',
      noProxy: 'files.example',
      host: 'files.example',
      port: 80,
      want: true,
    },
    {
      what: 'a subdomain of a host entry',
      noProxy: 'example.com',
      host: 'a.example.com',
      port: 443,
      want: true,
    },
    {
      what: 'a leading-dot entry and the bare domain',
      noProxy: '.example.com',
      host: 'example.com',
      port: 80,
      want: false,
    },
    {
      what: 'a leading-dot entry and a subdomain',
      noProxy: '.example.com',
      host: 'x.example.com',
      port: 80,
      want: true,
    },
    { what: 'a *. entry', noProxy: '*.svc', host: 'minio.cdi.svc', port: 9000, want: true },
    {
      what: 'a lookalike domain',
      noProxy: 'example.com',
      host: 'badexample.com',
      port: 80,
      want: false,
    },
    {
      what: 'a matching port',
      noProxy: 'files.example:8080',
      host: 'files.example',
      port: 8080,
      want: true,
    },
    {
      what: 'another port',
      noProxy: 'files.example:8080',
      host: 'files.example',
      port: 80,
      want: false,
    },
    { what: 'an IPv4 address', noProxy: '10.1.2.3', host: '10.1.2.3', port: 80, want: true },
    {
      what: 'an IPv4 CIDR (OpenShift service network)',
      noProxy: '172.30.0.0/16',
      host: '172.30.4.5',
      port: 443,
      want: true,
    },
    {
      what: 'an address outside the CIDR',
      noProxy: '172.30.0.0/16',
      host: '172.31.0.1',
      port: 443,
      want: false,
    },
    { what: 'an IPv6 CIDR', noProxy: 'fd00::/8', host: '[fd00::1]', port: 80, want: true },
    {
      what: 'a list with spaces and commas',
      noProxy: 'a.example, .svc ,10.0.0.0/8',
      host: '10.9.9.9',
      port: 80,
      want: true,
    },
    {
      what: 'case differences',
      noProxy: 'Files.Example',
      host: 'FILES.example',
      port: 80,
      want: true,
    },
    { what: 'an empty value', noProxy: '', host: 'files.example', port: 80, want: false },
    {
      what: 'loopback (not exempt, unlike Go: the sandbox uses 127.x)',
      noProxy: '',
      host: '127.0.0.1',
      port: 80,
      want: false,
    },
  ])('$what → $want', ({ noProxy, host, port, want }) => {
    expect(parseNoProxy(noProxy)(host, port)).toBe(want);
  });
});

describe('proxyFor', () => {
  const proxy: ProxyOptions = {
    httpProxy: 'http://p1:3128',
    httpsProxy: 'http://p2:3128',
    noProxy: '.local',
  };
  it.each([
    {
      what: 'http target → http_proxy',
      url: 'http://files.example/x',
      options: proxy,
      want: 'http://p1:3128',
    },
    {
      what: 'https target → https_proxy',
      url: 'https://files.example/x',
      options: proxy,
      want: 'http://p2:3128',
    },
    { what: 'exempt target → direct', url: 'https://nas.local/x', options: proxy, want: undefined },
    {
      what: 'https target with only http_proxy → direct (as Go)',
      url: 'https://files.example/x',
      options: { httpProxy: 'http://p1:3128' },
      want: undefined,
    },
    {
      what: 'http target with only https_proxy → direct',
      url: 'http://files.example/x',
      options: { httpsProxy: 'http://p2:3128' },
      want: undefined,
    },
  ])('$what', ({ url, options, want }) => {
    expect(proxyFor(new URL(url), options, parseNoProxy(options.noProxy ?? ''))).toBe(want);
  });
});
