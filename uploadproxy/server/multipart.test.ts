// SPDX-License-Identifier: Apache-2.0
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { openFormFile } from './multipart.js';

const BOUNDARY = 'cdi-test-boundary';
const headers = { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` };

function field(name: string, value: string): string {
  return `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
}
function fileHead(name: string): string {
  return `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"; filename="disk.img"\r\nContent-Type: application/octet-stream\r\n\r\n`;
}
const END = `\r\n--${BOUNDARY}--\r\n`;

async function collect(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('openFormFile', () => {
  it.each([
    { what: 'only the file part', parts: [fileHead('file'), 'DATA', END] },
    {
      what: 'fields before and after',
      parts: [
        field('a', '1'),
        fileHead('file'),
        'DATA',
        `\r\n${field('b', '2').slice(0)}--${BOUNDARY}--\r\n`,
      ],
    },
    {
      what: 'another file first (ignored)',
      parts: [fileHead('other'), 'XXXX\r\n', fileHead('file'), 'DATA', END],
    },
  ])('hands back the file part: $what', async ({ parts }) => {
    const file = await openFormFile(headers, Readable.from(parts.map((p) => Buffer.from(p))));
    expect((await collect(file)).toString()).toBe('DATA');
  });

  it.each([
    {
      what: 'not multipart',
      h: { 'content-type': 'application/octet-stream' },
      body: 'x',
      text: /cannot parse the upload form/,
    },
    {
      what: 'no file part',
      h: headers,
      body: `${field('a', '1')}--${BOUNDARY}--\r\n`,
      text: /no "file" part/,
    },
  ])('refuses $what with 400', async ({ h, body, text }) => {
    await expect(openFormFile(h, Readable.from([Buffer.from(body)]))).rejects.toMatchObject({
      code: 'CDI_INVALID_ARGUMENT',
      httpStatus: 400,
      message: expect.stringMatching(text) as unknown,
    });
  });

  it('a body cut inside the file part errors the file stream', async () => {
    const file = await openFormFile(
      headers,
      Readable.from([Buffer.from(fileHead('file')), Buffer.from('DATA')]),
    );
    await expect(collect(file)).rejects.toThrow(/Unexpected end of form|upload interrupted/);
  });

  it('backpressure: a slow consumer keeps the producer close behind (bounded memory)', async () => {
    const chunk = Buffer.alloc(64 * 1024, 7);
    const total = 1024; // 64 MiB
    let produced = 0;
    const body = new Readable({
      read(): void {
        if (produced === 0) this.push(Buffer.from(fileHead('file')));
        if (produced === total) {
          this.push(Buffer.from(END));
          this.push(null);
          return;
        }
        produced++;
        this.push(chunk);
      },
    });
    const file = await openFormFile(headers, body);
    let consumed = 0;
    let maxAhead = 0;
    for await (const c of file) {
      consumed += (c as Buffer).length;
      maxAhead = Math.max(maxAhead, produced * chunk.length - consumed);
      if (consumed < 8 * 1024 * 1024) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    expect(consumed).toBe(total * chunk.length);
    expect(maxAhead).toBeLessThan(4 * 1024 * 1024);
  });
});
