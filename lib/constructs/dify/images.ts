import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecrAssets from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { Construct } from 'constructs';
import { repoPath } from '../../paths';

/**
 * The SSRF proxy's image. Canonical's channel tags are rebuilt in place, so the tag is pinned to the
 * multi-platform index digest as well; Dify's own compose file uses `ubuntu/squid:latest`.
 */
export const SSRF_PROXY_IMAGE =
  'ubuntu/squid:6.6-24.04_beta@sha256:6a097f68bae708cedbabd6188d68c7e2e7a38cedd05a176e1cc0ba29e3bbe029';

/** The releases the images come from (configuration keys difyVersion, pluginDaemonVersion, sandboxVersion). */
export interface DifyVersions {
  readonly dify: string;
  readonly pluginDaemon: string;
  readonly sandbox: string;
}

/** Upstream image references, exact tags only (the schema refuses `latest`). */
export function upstreamImages(versions: DifyVersions) {
  return {
    api: `langgenius/dify-api:${versions.dify}`,
    web: `langgenius/dify-web:${versions.dify}`,
    sandbox: `langgenius/dify-sandbox:${versions.sandbox}`,
    pluginDaemon: `langgenius/dify-plugin-daemon:${versions.pluginDaemon}`,
    ssrfProxy: SSRF_PROXY_IMAGE,
  } as const;
}

export type ImageName = keyof ReturnType<typeof upstreamImages>;

/**
 * Every image a Dify task runs, mirrored unchanged into the app's ECR asset repository by
 * `cdk deploy` (images/mirror/Dockerfile), for ARM64. Synth only stages the two-line build folder;
 * Docker is needed at deploy time, not at synth.
 */
export class DifyImages extends Construct {
  public readonly upstream: ReturnType<typeof upstreamImages>;
  private readonly images = new Map<ImageName, ecs.ContainerImage>();

  constructor(scope: Construct, id: string, versions: DifyVersions) {
    super(scope, id);
    this.upstream = upstreamImages(versions);
  }

  public image(name: ImageName): ecs.ContainerImage {
    let image = this.images.get(name);
    if (image === undefined) {
      const asset = new ecrAssets.DockerImageAsset(this, name, {
        directory: repoPath('images/mirror'),
        buildArgs: { IMAGE: this.upstream[name] },
        platform: Platform.LINUX_ARM64,
        displayName: `dify-${name}`,
      });
      image = ecs.ContainerImage.fromDockerImageAsset(asset);
      this.images.set(name, image);
    }
    return image;
  }
}
