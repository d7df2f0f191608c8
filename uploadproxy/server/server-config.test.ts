// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { loadUploadServerConfig } from './server-config.js';

const TLS = {
  TLS_KEY_FILE: '/certs/tls.key',
  TLS_CERT_FILE: '/certs/tls.crt',
  CLIENT_CERT_FILE: '/certs/ca.crt',
  CLIENT_NAME: 'client.upload-server.cdi.kubevirt.io',
};

describe('loadUploadServerConfig', () => {
  it("reads CDI's upload pod environment with our path overrides", () => {
    const config = loadUploadServerConfig(
      {
        ...TLS,
        UPLOAD_IMAGE_SIZE: '1Gi',
        FILESYSTEM_OVERHEAD: '0.055',
        PREALLOCATION: 'true',
        CDI_DATA_DIR: '/tmp/d',
        CDI_UPLOAD_LISTEN: '127.0.0.1:0',
      },
      false,
    );
    expect(config).toMatchObject({
      ...{ tlsKeyFile: '/certs/tls.key', clientName: 'client.upload-server.cdi.kubevirt.io' },
      imageSize: 1 << 30,
      filesystemOverhead: 0.055,
      preallocation: true,
      dataDir: '/tmp/d',
      blockDevice: '/dev/cdi-block-volume',
      scratchDir: '/scratch',
      terminationLog: '/dev/termination-log',
      listen: { host: '127.0.0.1', port: 0 },
      destination: undefined,
    });
  });

  it('lists every bad variable at once', () => {
    expect(() =>
      loadUploadServerConfig(
        { UPLOAD_IMAGE_SIZE: 'big', FILESYSTEM_OVERHEAD: '2', PREALLOCATION: 'maybe' },
        false,
      ),
    ).toThrow(
      expect.objectContaining({
        code: 'CDI_INVALID_CONFIG',
        message: expect.stringMatching(
          /TLS_KEY_FILE is required.*CLIENT_NAME is required.*UPLOAD_IMAGE_SIZE.*FILESYSTEM_OVERHEAD.*PREALLOCATION/,
        ) as unknown,
      }) as Error,
    );
  });

  it('needs no TLS material when insecure', () => {
    expect(loadUploadServerConfig({}, true)).toMatchObject({
      tlsKeyFile: undefined,
      imageSize: undefined,
      listen: { port: 8443 },
    });
  });
});
