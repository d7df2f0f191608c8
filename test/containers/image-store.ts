// SPDX-License-Identifier: Apache-2.0
/**
 * A node's image store, as containerd keeps it for the kubelet: a container's `image` is parsed
 * as a Docker reference, its registry mapped onto a mirror (as containerd's registry mirrors
 * do: the sandbox's local registry stands for docker.io), a tag resolved to its manifest digest,
 * the image pulled by that digest with `skopeo copy` into an OCI layout and unpacked once per
 * digest under the cache directory, shared by every sandbox on the machine.
 * `imagePullPolicy` decides when a tag is resolved again: Always on every start, IfNotPresent
 * once, Never not at all (the image must be present). Failures carry the kubelet's reasons
 * (ErrImagePull, ErrImageNeverPull, InvalidImageName) and containerd's messages.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  formatImageReference,
  parseImageReference,
  type ImageReference,
} from '../../importer/sources/registry/reference.js';
import { pruneUnpacked, unpackLayout, type ImageRuntimeConfig } from './oci-image.js';

const run = promisify(execFile);
const MAX_BUFFER = 16 << 20;
/** Pulled images unused for this long are removed when another one is unpacked. */
const UNUSED_IMAGE_MS = 60 * 60_000;

/** `imagePullPolicy` values. */
export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';

/** Registry mirrors: an image's registry (`docker.io`, `quay.io:443`) → `host:port` (plain HTTP). */
export type RegistryMirrors = Readonly<Record<string, string>>;

/** An image ready to run. */
export interface StoredImage {
  readonly rootfs: string;
  readonly config: ImageRuntimeConfig;
  /** The manifest digest the image was pulled by. */
  readonly digest: string;
  /** The pod status's `imageID`: `<registry>/<repository>@<digest>`. */
  readonly imageID: string;
}

/** The kubelet's waiting reasons for an image it cannot provide. */
export type PullFailureReason = 'ErrImagePull' | 'ErrImageNeverPull' | 'InvalidImageName';

/** The image cannot be provided; `message` is the kubelet's for the container status. */
export class PullFailure extends Error {
  override readonly name = 'PullFailure';
  constructor(
    readonly reason: PullFailureReason,
    message: string,
  ) {
    super(message);
  }
}

/** The policy the API server defaults to: Always for `:latest` or no tag, else IfNotPresent. */
export function pullPolicyOf(container: Record<string, unknown>): PullPolicy {
  const given = container['imagePullPolicy'];
  if (given === 'Always' || given === 'IfNotPresent' || given === 'Never') return given;
  const image = typeof container['image'] === 'string' ? container['image'] : '';
  if (image.includes('@')) return 'IfNotPresent';
  const last = image.slice(image.lastIndexOf('/') + 1);
  return !last.includes(':') || last.endsWith(':latest') ? 'Always' : 'IfNotPresent';
}

/** The image reference of `name`, or InvalidImageName as the kubelet reports it. */
export function parseContainerImage(name: string): ImageReference {
  try {
    if (name === '') throw new Error('empty');
    return parseImageReference(`docker://${name}`);
  } catch {
    throw new PullFailure(
      'InvalidImageName',
      `Failed to apply default image tag "${name}": couldn't parse image name "${name}": invalid reference format`,
    );
  }
}

/** The last meaningful line skopeo printed, for a pull failure's message. */
function skopeoError(err: unknown): string {
  const stderr = (err as { stderr?: unknown }).stderr;
  const text = typeof stderr === 'string' ? stderr : err instanceof Error ? err.message : '';
  const lines = text
    .split('\n')
    .map((l) => l.replace(/^time="[^"]*" level=\w+ msg="(.*)"$/, '$1').trim())
    .filter((l) => l !== '');
  return lines[lines.length - 1] ?? 'unknown error';
}

/** Resolves, pulls and unpacks images (see the module comment). */
export class ImageStore {
  readonly #cacheDir: string;
  readonly #mirrors: RegistryMirrors;
  /** Reference (`registry/repository:tag`) → digest, as the node's image list. */
  readonly #tags = new Map<string, string>();
  /** Pulls under way, by digest: concurrent containers of one image pull once. */
  readonly #pulls = new Map<string, Promise<StoredImage>>();

  constructor(options: { readonly cacheDir: string; readonly mirrors: RegistryMirrors }) {
    this.#cacheDir = options.cacheDir;
    this.#mirrors = options.mirrors;
  }

  /** The image named `name` under `policy`; throws PullFailure. */
  async image(name: string, policy: PullPolicy): Promise<StoredImage> {
    const ref = parseContainerImage(name);
    const key = formatImageReference(ref);
    const known = ref.digest ?? this.#tags.get(key);
    if (known !== undefined && policy !== 'Always' && this.#present(known)) {
      return this.#load(ref, known);
    }
    if (policy === 'Never') {
      throw new PullFailure(
        'ErrImageNeverPull',
        `Container image "${name}" is not present with pull policy of Never`,
      );
    }
    const digest = ref.digest ?? (await this.#resolve(ref, key));
    this.#tags.set(key, digest);
    if (this.#present(digest)) return this.#load(ref, digest);
    let pull = this.#pulls.get(digest);
    if (pull === undefined) {
      pull = this.#pull(ref, key, digest).finally(() => this.#pulls.delete(digest));
      this.#pulls.set(digest, pull);
    }
    await pull;
    return this.#load(ref, digest);
  }

  /** The `host:port` serving `ref`'s registry: its mirror, else the registry itself. */
  #endpoint(ref: ImageReference): string {
    return this.#mirrors[ref.registry] ?? ref.apiHost;
  }

  #dir(digest: string): string {
    return join(this.#cacheDir, digest.replace(/^sha256:/, ''));
  }

  #present(digest: string): boolean {
    return existsSync(join(this.#dir(digest), 'config.json'));
  }

  /** The tag's manifest digest: the sha256 of the manifest bytes the registry serves. */
  async #resolve(ref: ImageReference, key: string): Promise<string> {
    const source = `docker://${this.#endpoint(ref)}/${ref.repository}:${ref.tag ?? 'latest'}`;
    try {
      const { stdout } = await run(
        'skopeo',
        ['inspect', '--raw', '--tls-verify=false', '--retry-times', '0', source],
        { encoding: 'buffer', maxBuffer: MAX_BUFFER },
      );
      return `sha256:${createHash('sha256').update(stdout).digest('hex')}`;
    } catch (err) {
      const why = skopeoError(err);
      const notFound = /manifest unknown|not found|name unknown/i.test(why);
      throw new PullFailure(
        'ErrImagePull',
        notFound
          ? `rpc error: code = NotFound desc = failed to pull and unpack image "${key}": failed to resolve reference "${key}": ${key}: not found`
          : `rpc error: code = Unknown desc = failed to pull and unpack image "${key}": failed to resolve reference "${key}": ${why}`,
      );
    }
  }

  /** Copies the image by digest into a layout and unpacks it; the first rename wins. */
  async #pull(ref: ImageReference, key: string, digest: string): Promise<StoredImage> {
    await mkdir(this.#cacheDir, { recursive: true });
    const work = await mkdtemp(join(this.#cacheDir, 'pull-'));
    const source = `docker://${this.#endpoint(ref)}/${ref.repository}@${digest}`;
    try {
      await run(
        'skopeo',
        [
          '--insecure-policy',
          'copy',
          '--quiet',
          '--src-tls-verify=false',
          '--retry-times',
          '0',
          source,
          `oci:${join(work, 'layout')}:image`,
        ],
        { maxBuffer: MAX_BUFFER },
      ).catch((err: unknown) => {
        throw new PullFailure(
          'ErrImagePull',
          `rpc error: code = Unknown desc = failed to pull and unpack image "${key}": ${skopeoError(err)}`,
        );
      });
      const image = await unpackLayout(join(work, 'layout'), join(work, 'rootfs'), 'image');
      await rm(join(work, 'layout'), { recursive: true, force: true });
      await writeFile(join(work, 'config.json'), JSON.stringify(image.config));
      await rename(work, this.#dir(digest)).catch((err: unknown) => {
        if (!this.#present(digest)) throw err;
      });
    } finally {
      await rm(work, { recursive: true, force: true });
    }
    await pruneUnpacked(this.#cacheDir, digest.replace(/^sha256:/, ''), UNUSED_IMAGE_MS);
    return this.#load(ref, digest);
  }

  async #load(ref: ImageReference, digest: string): Promise<StoredImage> {
    const dir = this.#dir(digest);
    const marker = join(dir, 'config.json');
    const usedAt = new Date();
    await utimes(marker, usedAt, usedAt);
    const config = JSON.parse(await readFile(marker, 'utf8')) as ImageRuntimeConfig;
    return {
      rootfs: join(dir, 'rootfs'),
      config,
      digest,
      imageID: `${ref.registry}/${ref.repository}@${digest}`,
    };
  }
}
