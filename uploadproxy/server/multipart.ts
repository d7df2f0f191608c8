// SPDX-License-Identifier: Apache-2.0
/**
 * The multipart stage of the form endpoints (CDI `formReadCloser`): hands back the part named
 * `file` as a Readable, drains every other part (and any later `file`), and never buffers it.
 * Backpressure is busboy's own: the file stream it emits is paused by its consumer, which holds
 * busboy's write callback, which pauses the request.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { pipeline as linkStreams, type Readable } from 'node:stream';
import busboy from 'busboy';
import { CdiError, ErrorCodes, errorMessage } from '../../common/errors.js';

/** The form field holding the image (CDI and the OpenShift console use `file`). */
export const FORM_FILE_FIELD = 'file';

function badForm(message: string, cause?: unknown): CdiError {
  return new CdiError(ErrorCodes.InvalidArgument, message, {
    httpStatus: 400,
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Starts parsing a `multipart/form-data` body and resolves with the `file` part's stream once it
 * begins. Rejects (400) when the body is not multipart, ends without a `file` part, or is cut.
 * Errors after the part began (truncation) are raised on the returned stream.
 */
export function openFormFile(headers: IncomingHttpHeaders, body: Readable): Promise<Readable> {
  return new Promise<Readable>((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      // No `files` limit: CDI skips file parts with other names, which busboy would count.
      parser = busboy({ headers, limits: { fields: 100, fieldSize: 64 * 1024, parts: 1000 } });
    } catch (err) {
      reject(badForm(`cannot parse the upload form: ${errorMessage(err)}`, err));
      return;
    }
    let file: Readable | undefined;
    const fail = (err: CdiError): void => {
      if (file === undefined) reject(err);
      else file.destroy(err);
    };
    parser.on('file', (name, stream) => {
      if (name !== FORM_FILE_FIELD || file !== undefined) {
        stream.resume();
        return;
      }
      file = stream;
      // The part may fail before its consumer attaches (a body cut right after the part began);
      // the consumer still sees the error through `stream.errored`, so none goes unhandled here.
      stream.on('error', () => undefined);
      stream.once('limit', () => fail(badForm('upload form file exceeds the limit')));
      resolve(stream);
    });
    parser.on('error', (err: unknown) =>
      fail(badForm(`cannot parse the upload form: ${errorMessage(err)}`, err)),
    );
    parser.on('close', () => {
      if (file === undefined) reject(badForm(`upload form has no "${FORM_FILE_FIELD}" part`));
    });
    // Callback form: a cut request destroys the parser, whose error reaches the file stream.
    linkStreams(body, parser, (err) => {
      if (err) fail(badForm(`upload interrupted: ${errorMessage(err)}`, err));
    });
  });
}
