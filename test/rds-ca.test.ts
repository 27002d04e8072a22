import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { RDS_CA_BUNDLE_FILE, RDS_CA_IMAGE_PATH, rdsCaBundle } from '../lib/rds-ca';
import { repoPath } from '../lib/paths';
import { build } from './helpers/synth';
import { resources, strings } from './helpers/template';

// A trust anchor fetched at container start could be swapped in transit or fail to arrive; the
// bundle is committed, pinned by SHA-256, and baked into the image.
describe('the RDS CA bundle', () => {
  it('is the pinned file, and every entry is an RDS root certificate authority', () => {
    const pem = rdsCaBundle();
    const certificates = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    expect(certificates.length).toBeGreaterThan(50);
    for (const text of certificates) {
      const certificate = new X509Certificate(text);
      expect(certificate.ca).toBe(true);
      expect(certificate.issuer).toMatch(/^O=Amazon Web Services\\?, Inc\.$/m);
      expect(certificate.issuer).toMatch(/^OU=Amazon RDS$/m);
    }
  });

  it('is baked into the dify-api image, not downloaded', () => {
    const dockerfile = readFileSync(repoPath('images/api/Dockerfile'), 'utf8');
    expect(dockerfile).toContain(`COPY --chmod=0444 rds-ca-bundle.pem ${RDS_CA_IMAGE_PATH}`);
    expect(dockerfile).not.toMatch(/^RUN|ADD\s+https?:/m);
    expect(RDS_CA_BUNDLE_FILE.startsWith('images/api/')).toBe(true);
  });

  it('is what every api-family container trusts, and no container fetches anything at start', () => {
    const { template } = build({ profile: 'dev' });
    const commands = resources(template, 'AWS::ECS::TaskDefinition').flatMap(([, task]) =>
      strings((task.Properties!.ContainerDefinitions as Array<{ Command?: unknown }>).map((c) => c.Command)),
    );
    expect(commands.join('\n')).not.toMatch(/truststore\.pki\.rds|urlretrieve/);
    expect(JSON.stringify(template.toJSON())).toContain(`sslrootcert=${RDS_CA_IMAGE_PATH}`);
  });
});
