import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A throwaway self-signed certificate for 127.0.0.1, and where its PEM files are. */
export interface LoopbackCertificate {
  readonly key: string;
  readonly cert: string;
  /** The certificate's path, for NODE_EXTRA_CA_CERTS in a process the test starts. */
  readonly certPath: string;
}

let made: LoopbackCertificate | undefined;

/**
 * The fake providers serve HTTPS, because the gateway sends provider keys over https only. The
 * certificate is made once per test file with the openssl CLI (a P-256 key, valid for two days,
 * IP:127.0.0.1 as its subject alternative name), never committed, and trusted only by what the test
 * points at it: the harness's dispatcher (`ca`) or a gateway process (NODE_EXTRA_CA_CERTS).
 */
export function loopbackCertificate(): LoopbackCertificate {
  if (made !== undefined) return made;
  const dir = mkdtempSync(join(tmpdir(), 'gateway-tls-'));
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-days',
      '2',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'pipe' },
  );
  made = { key: readFileSync(keyPath, 'utf8'), cert: readFileSync(certPath, 'utf8'), certPath };
  return made;
}
