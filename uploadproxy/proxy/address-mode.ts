// SPDX-License-Identifier: Apache-2.0
/**
 * How the proxy addresses upload servers (`--upload-server-address`), apart from the resolver so
 * that parsing the flag does not load the Kubernetes client.
 */

/** The modes, `dns` first (the default). */
export const UploadServerAddressModes = ['dns', 'cluster-ip'] as const;
/** One of {@link UploadServerAddressModes}. */
export type UploadServerAddressMode = (typeof UploadServerAddressModes)[number];
