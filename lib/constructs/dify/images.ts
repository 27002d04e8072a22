import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecrAssets from 'aws-cdk-lib/aws-ecr-assets';
import { Construct } from 'constructs';
import { addSynthWarning } from '../../config/warning-catalog';
import { repoPath } from '../../paths';
import { rdsCaBundle } from '../../rds-ca';

/**
 * The SSRF proxy's image. Canonical's channel tags are rebuilt in place, so the tag is pinned to the
 * multi-platform index digest as well; Dify's own compose file uses `ubuntu/squid:latest`.
 */
export const SSRF_PROXY_IMAGE =
  'ubuntu/squid:6.6-24.04_beta@sha256:6a097f68bae708cedbabd6188d68c7e2e7a38cedd05a176e1cc0ba29e3bbe029';

/**
 * Multi-platform index digests of the upstream images, by `repository:tag`, so that a tag moved in
 * the registry can never change what a deploy runs. A reference is written `tag@digest`: the tag
 * for humans, the digest for the registry. Add the digest of a new tag with
 * `docker buildx imagetools inspect <image>:<tag>` (the `Digest:` line) before deploying it.
 *
 * The Dify images' digests could not be read on the machines this project is built on (they reach
 * no container registry), so they are listed as `undefined`: synth then warns that the image is
 * pinned by tag only (see `imageReference`).
 */
export const IMAGE_DIGESTS: Readonly<Record<string, string | undefined>> = {
  'langgenius/dify-api:1.13.3': undefined,
  'langgenius/dify-web:1.13.3': undefined,
  'langgenius/dify-sandbox:0.2.14': undefined,
  'langgenius/dify-plugin-daemon:0.5.3-local': undefined,
};

/** The releases the images come from (configuration keys difyVersion, pluginDaemonVersion, sandboxVersion). */
export interface DifyVersions {
  readonly dify: string;
  readonly pluginDaemon: string;
  readonly sandbox: string;
}

/** `repository:tag@sha256:…` where the digest is known, else `repository:tag`. */
export function imageReference(repositoryAndTag: string): string {
  const digest = IMAGE_DIGESTS[repositoryAndTag];
  return digest === undefined ? repositoryAndTag : `${repositoryAndTag}@${digest}`;
}

/** Upstream image references: exact tags (the schema refuses `latest`), with their digests where known. */
export function upstreamImages(versions: DifyVersions) {
  return {
    api: imageReference(`langgenius/dify-api:${versions.dify}`),
    web: imageReference(`langgenius/dify-web:${versions.dify}`),
    sandbox: imageReference(`langgenius/dify-sandbox:${versions.sandbox}`),
    pluginDaemon: imageReference(`langgenius/dify-plugin-daemon:${versions.pluginDaemon}`),
    ssrfProxy: SSRF_PROXY_IMAGE,
  } as const;
}

export type ImageName = keyof ReturnType<typeof upstreamImages>;

/**
 * Every image a Dify task runs, mirrored into the app's ECR asset repository by `cdk deploy`, for
 * ARM64: unchanged through images/mirror/Dockerfile, except the dify-api image, which also gets the
 * committed RDS CA bundle (images/api/Dockerfile). Synth only stages the small build folders;
 * Docker is needed at deploy time, not at synth.
 */
export class DifyImages extends Construct {
  public readonly upstream: ReturnType<typeof upstreamImages>;
  private readonly images = new Map<ImageName, ecrAssets.DockerImageAsset>();

  constructor(scope: Construct, id: string, versions: DifyVersions) {
    super(scope, id);
    this.upstream = upstreamImages(versions);
  }

  /** The mirrored image, staged on first use; synth warns when its reference has no digest. */
  public image(name: ImageName): ecrAssets.DockerImageAsset {
    let asset = this.images.get(name);
    if (asset === undefined) {
      const reference = this.upstream[name];
      if (!reference.includes('@sha256:')) {
        addSynthWarning(
          this,
          `dify:image-not-digest-pinned:${name}`,
          `Image ${reference} is pinned by tag only: add its index digest to IMAGE_DIGESTS in lib/constructs/dify/images.ts (docker buildx imagetools inspect ${reference}) so that a moved tag cannot change what runs.`,
        );
      }
      // Refuses to stage a trust anchor whose SHA-256 is not the pinned one.
      if (name === 'api') rdsCaBundle();
      asset = new ecrAssets.DockerImageAsset(this, name, {
        directory: repoPath(name === 'api' ? 'images/api' : 'images/mirror'),
        buildArgs: { IMAGE: reference },
        platform: Platform.LINUX_ARM64,
        displayName: `dify-${name}`,
      });
      this.images.set(name, asset);
    }
    return asset;
  }
}
