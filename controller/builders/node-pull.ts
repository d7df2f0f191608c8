// SPDX-License-Identifier: Apache-2.0
/**
 * Registry `pullMethod: node`, as CDI's import controller builds it (`isRegistryNodeImport`,
 * `makeImporterInitContainersSpec`, `setRegistryNodeImportEnvVars`): the kubelet pulls the
 * container disk image itself, as a container of the importer pod. An init container of the
 * cdi image copies the static file server into a shared emptyDir; the `server` container runs
 * the disk image with that server, which serves its one file under `/disk` on localhost:8100
 * and writes the ready file; the importer reads it over HTTP and writes the done file when it
 * has finished, so that the server exits and the pod completes. Pure.
 */
import type { V1Container, V1PersistentVolumeClaim, V1Volume } from '@kubernetes/client-node';
import {
  Annotations,
  ImporterEnv,
  PodPaths,
  PullMethods,
  SourceKinds,
} from '../../common/contract.js';
import type { NodePlacement } from '../cdi/types.js';
import { annotation } from './claim.js';

/** The emptyDir the server binary and the ready/done files share (CDI's names). */
export const SHARED_VOLUME = 'shared-volume';
const SHARED_DIR = '/shared';
const SERVER_PORT = 8100;
/** Where the cdi image holds the server, and what the init container copies it to. */
const SERVER_BINARY = '/usr/bin/cdi-containerimage-server';
const SERVER_COPY = `${SHARED_DIR}/server`;
const READY_FILE = `${SHARED_DIR}/ready`;
const DONE_FILE = `${SHARED_DIR}/done`;
/** The container disk image keeps its disk file here. */
const IMAGE_DIR = '/disk';

/** True for a registry import the node pulls (the claim's registryImportMethod is `node`). */
export function isNodePull(pvc: V1PersistentVolumeClaim, source: string): boolean {
  return (
    source === SourceKinds.Registry &&
    annotation(pvc, Annotations.RegistryImportMethod) === PullMethods.Node
  );
}

/** The image the kubelet pulls: the endpoint without `docker://` (CDI getRegistryImportImage). */
export function nodePullImage(endpoint: string): string {
  return endpoint.replace(/^docker:\/\//, '');
}

/** The importer's environment for a node pull: an HTTP source on the server container. */
export const NODE_PULL_ENV: Readonly<Record<string, string>> = {
  [ImporterEnv.Source]: SourceKinds.Http,
  [ImporterEnv.Endpoint]: `http://localhost:${SERVER_PORT}/${PodPaths.DiskImageName}`,
  [ImporterEnv.PullMethod]: PullMethods.Node,
  [ImporterEnv.ReadyFile]: READY_FILE,
  [ImporterEnv.DoneFile]: DONE_FILE,
};

/** The init container, the server container and the shared volume of a node pull. */
export function nodePullParts(input: {
  readonly importerImage: string;
  readonly pullPolicy: string;
  readonly diskImage: string;
  readonly resources: V1Container['resources'];
}): { initContainers: V1Container[]; sidecars: V1Container[]; volume: V1Volume } {
  const shared = [{ name: SHARED_VOLUME, mountPath: SHARED_DIR }];
  return {
    initContainers: [
      {
        name: 'init',
        image: input.importerImage,
        imagePullPolicy: input.pullPolicy,
        command: ['sh', '-c', `cp ${SERVER_BINARY} ${SERVER_COPY}`],
        volumeMounts: shared,
        resources: { ...input.resources },
      },
    ],
    sidecars: [
      {
        name: 'server',
        image: input.diskImage,
        imagePullPolicy: input.pullPolicy,
        command: [
          SERVER_COPY,
          '-p',
          String(SERVER_PORT),
          '-image-dir',
          IMAGE_DIR,
          '-ready-file',
          READY_FILE,
          '-done-file',
          DONE_FILE,
        ],
        volumeMounts: shared,
        resources: { ...input.resources },
      },
    ],
    volume: { name: SHARED_VOLUME, emptyDir: {} },
  };
}

/** The node label of an architecture (CDI setRegistryNodeImportNodeSelector). */
const ARCH_LABEL = 'kubernetes.io/arch';

/**
 * The placement of a node pull: the workload's, plus the image architecture the claim asks for
 * as a node selector, so that the kubelet pulling the image runs on that architecture.
 */
export function nodePullPlacement(
  workload: NodePlacement | undefined,
  architecture: string | undefined,
): NodePlacement | undefined {
  if (architecture === undefined || architecture === '') return workload;
  return {
    ...workload,
    nodeSelector: { ...workload?.nodeSelector, [ARCH_LABEL]: architecture },
  };
}
