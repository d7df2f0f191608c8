// SPDX-License-Identifier: Apache-2.0
/**
 * A Google Cloud Storage stand-in for tests, on 127.0.0.1 port 0: the XML download API
 * (`GET|HEAD /BUCKET/OBJECT`), the JSON download API (`GET /storage/v1/b/BUCKET/o/OBJECT?alt=media`)
 * with `Range` and a strong ETag, and an OAuth token endpoint (`POST /token`) that accepts only a
 * JWT-bearer assertion signed by the service account's key, naming it, the storage scope and this
 * endpoint as audience. Private objects need the token it issued; public ones need nothing.
 * {@link createServiceAccountKey} writes the key JSON Google hands out, pointing at this server.
 */
import { createHash, createVerify, generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A stored object. */
export interface GcsObject {
  readonly data: Buffer;
  /** Readable without a token (allUsers: objectViewer). */
  readonly public?: boolean;
}

/** One request the server saw. */
export interface GcsRequest {
  readonly method: string;
  readonly url: string;
  readonly authorization: string | undefined;
}

/** A running stand-in. */
export interface TestGcsServer {
  /** `http://127.0.0.1:PORT`. */
  readonly origin: string;
  /** `127.0.0.1:PORT`, the form of `STORAGE_EMULATOR_HOST`. */
  readonly host: string;
  /** `bucket/object` → object; may change between requests. */
  readonly objects: Map<string, GcsObject>;
  readonly requests: GcsRequest[];
  /** Tokens issued, in order. */
  readonly issued: string[];
  /** The one key the token endpoint accepts, if any. */
  readonly account: TestServiceAccountKey | undefined;
  close(): Promise<void>;
}

/** A generated service-account key: the JSON text and the public key that verifies it. */
export interface TestServiceAccountKey {
  readonly json: string;
  readonly clientEmail: string;
  readonly publicKeyPem: string;
}

const SCOPE = 'https://www.googleapis.com/auth/devstorage.read_only';

/** A fresh RSA service-account key whose `token_uri` is `tokenUri`. */
export function createServiceAccountKey(tokenUri: string): TestServiceAccountKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const clientEmail = 'importer@cdi-test.iam.gserviceaccount.com';
  const json = JSON.stringify({
    type: 'service_account',
    project_id: 'cdi-test',
    private_key_id: randomBytes(8).toString('hex'),
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    client_email: clientEmail,
    client_id: '1',
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: tokenUri,
  });
  return {
    json,
    clientEmail,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

function decodeJson(part: string): Record<string, unknown> {
  const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}

/** Why an assertion is refused, or undefined when it is good. */
function assertionProblem(
  jwt: string,
  account: TestServiceAccountKey,
  audience: string,
): string | undefined {
  const [h = '', c = '', sig = ''] = jwt.split('.');
  const header = decodeJson(h);
  const claims = decodeJson(c);
  if (header['alg'] !== 'RS256') return 'alg must be RS256';
  const ok = createVerify('RSA-SHA256')
    .update(`${h}.${c}`)
    .verify(account.publicKeyPem, Buffer.from(sig, 'base64url'));
  if (!ok) return 'invalid_grant: bad signature';
  if (claims['iss'] !== account.clientEmail) return 'invalid_grant: unknown issuer';
  if (claims['aud'] !== audience) return 'invalid_grant: wrong audience';
  if (claims['scope'] !== SCOPE) return 'invalid_scope';
  const now = Date.now() / 1000;
  const iat = Number(claims['iat']);
  const exp = Number(claims['exp']);
  if (!(iat <= now + 60 && exp > now && exp - iat <= 3600)) return 'invalid_grant: bad times';
  return undefined;
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** `bucket/object` of a download request, or undefined. */
function objectKey(url: URL): string | undefined {
  const json = /^\/(?:download\/)?storage\/v1\/b\/([^/]+)\/o\/([^/]+)$/.exec(url.pathname);
  if (json !== null) {
    if (url.searchParams.get('alt') !== 'media') return undefined;
    return `${decodeURIComponent(json[1] ?? '')}/${decodeURIComponent(json[2] ?? '')}`;
  }
  const parts = url.pathname.replace(/^\//, '').split('/').map(decodeURIComponent);
  return parts.length >= 2 ? parts.join('/') : undefined;
}

function sendError(res: http.ServerResponse, status: number, message: string): void {
  const body = JSON.stringify({ error: { code: status, message } });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}

interface ServerState {
  readonly objects: Map<string, GcsObject>;
  readonly issued: string[];
  key: TestServiceAccountKey | undefined;
  origin: string;
}

/** `POST /token`: a JWT-bearer assertion signed by the account's key buys a token. */
async function answerToken(
  state: ServerState,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  const form = new URLSearchParams(await readBody(req));
  const problem =
    form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer'
      ? 'unsupported_grant_type'
      : state.key === undefined
        ? 'invalid_client'
        : assertionProblem(form.get('assertion') ?? '', state.key, `${state.origin}/token`);
  if (problem !== undefined) return sendError(res, 400, problem);
  const token = `ya29.${randomBytes(16).toString('hex')}`;
  state.issued.push(token);
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ access_token: token, expires_in: 3599, token_type: 'Bearer' }));
}

/** Sends an object, whole or the one range asked for. */
function sendObject(req: http.IncomingMessage, res: http.ServerResponse, data: Buffer): void {
  const etag = `"${createHash('md5').update(data).digest('hex')}"`;
  const size = data.length;
  const headers = { 'accept-ranges': 'bytes', etag, 'content-type': 'application/octet-stream' };
  const body = (b: Buffer): Buffer | undefined => (req.method === 'HEAD' ? undefined : b);
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  if (range === null) {
    res.writeHead(200, { ...headers, 'content-length': size });
    return void res.end(body(data));
  }
  const first = Number(range[1]);
  const last = Math.min(range[2] === '' ? size - 1 : Number(range[2]), size - 1);
  if (first >= size || last < first) {
    res.writeHead(416, { 'content-range': `bytes */${size}` });
    return void res.end();
  }
  res.writeHead(206, {
    ...headers,
    'content-range': `bytes ${first}-${last}/${size}`,
    'content-length': last - first + 1,
  });
  res.end(body(data.subarray(first, last + 1)));
}

/** `GET|HEAD` of an object by the XML or JSON API; private ones need an issued token. */
function answerObject(
  state: ServerState,
  url: URL,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') return sendError(res, 405, 'method');
  const name = objectKey(url);
  const object = name === undefined ? undefined : state.objects.get(name);
  if (object === undefined) return sendError(res, 404, 'No such object');
  if (object.public !== true) {
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (bearer === undefined) return sendError(res, 401, 'Anonymous caller');
    if (!state.issued.includes(bearer)) return sendError(res, 401, 'Invalid Credentials');
  }
  sendObject(req, res, object.data);
}

/** Starts the stand-in; `account` makes the only key its token endpoint accepts. */
export async function startGcsServer(
  account: (origin: string) => TestServiceAccountKey | undefined = () => undefined,
): Promise<TestGcsServer> {
  const state: ServerState = { objects: new Map(), issued: [], key: undefined, origin: '' };
  const requests: GcsRequest[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    requests.push({
      method: req.method ?? '',
      url: req.url ?? '',
      authorization: req.headers.authorization,
    });
    const handled =
      req.method === 'POST' && url.pathname === '/token'
        ? answerToken(state, req, res)
        : Promise.resolve(answerObject(state, url, req, res));
    handled.catch((err: unknown) => {
      res.destroy(err instanceof Error ? err : new Error(String(err)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  state.origin = `http://127.0.0.1:${port}`;
  state.key = account(state.origin);
  return {
    origin: state.origin,
    host: `127.0.0.1:${port}`,
    objects: state.objects,
    requests,
    issued: state.issued,
    account: state.key,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
