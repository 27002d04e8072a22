import { createHash, createHmac } from 'node:crypto';
import { scramSha256Verifier, VERIFIER_SHAPE } from '../../contracts/scram';

/** RFC 7677, section 3: user "user", password "pencil". */
const RFC = {
  salt: 'W22ZaJ0SNY7soEsUEjb6gQ==',
  authMessage:
    'n=user,r=rOprNGfwEbeRWgbNEkqO,' +
    'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,' +
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  clientProof: 'dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverSignature: '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

describe('the SCRAM-SHA-256 verifier sent instead of the password', () => {
  const verifier = scramSha256Verifier('pencil', Buffer.from(RFC.salt, 'base64'));
  const [, iterations, salt, storedKey, serverKey] = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(verifier)!;

  it('has the form PostgreSQL stores, with its default 4096 iterations', () => {
    expect(verifier).toMatch(VERIFIER_SHAPE);
    expect(iterations).toBe('4096');
    expect(salt).toBe(RFC.salt);
  });

  it('lets the server produce the RFC 7677 server signature', () => {
    const signature = createHmac('sha256', Buffer.from(serverKey, 'base64')).update(RFC.authMessage).digest('base64');
    expect(signature).toBe(RFC.serverSignature);
  });

  it('verifies the RFC 7677 client proof, as PostgreSQL does at login', () => {
    const stored = Buffer.from(storedKey, 'base64');
    const clientSignature = createHmac('sha256', stored).update(RFC.authMessage).digest();
    const proof = Buffer.from(RFC.clientProof, 'base64');
    const clientKey = Buffer.from(proof.map((byte, i) => byte ^ clientSignature[i]));
    expect(createHash('sha256').update(clientKey).digest().equals(stored)).toBe(true);
  });

  it('never contains the password, and salts each verifier afresh', () => {
    const password = 'Correct1Horse2Battery3Staple4';
    const a = scramSha256Verifier(password);
    const b = scramSha256Verifier(password);
    expect(a).not.toContain(password);
    expect(a).not.toBe(b);
  });
});
