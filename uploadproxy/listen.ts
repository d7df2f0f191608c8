// SPDX-License-Identifier: Apache-2.0
/** `host:port` listen addresses of the upload verbs (pure). */
import { CdiError, ErrorCodes } from '../common/errors.js';

/** A parsed listen address. */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** Parses `host:port` (`[::1]:8443` for IPv6); `CDI_INVALID_ARGUMENT` when malformed. */
export function parseListen(text: string): ListenAddress {
  const colon = text.lastIndexOf(':');
  const port = Number(text.slice(colon + 1));
  const host = text.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  if (
    colon <= 0 ||
    text.slice(colon + 1) === '' ||
    !Number.isInteger(port) ||
    port < 0 ||
    port > 65535 ||
    host === ''
  )
    throw new CdiError(
      ErrorCodes.InvalidArgument,
      `listen address ${JSON.stringify(text)} is not host:port`,
    );
  return { host, port };
}
