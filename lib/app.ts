import type { App } from 'aws-cdk-lib';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import type { Config } from './config/schema';
import { DifyStack } from './stacks/dify-stack';
import { GlobalStack } from './stacks/global-stack';

/** Every stack of the app, as `bin/` and the tests build them. */
export interface DifyApp {
  readonly main: DifyStack;
  /** The us-east-1 stack CloudFront needs; only with `edge=cloudfront`. */
  readonly global?: GlobalStack;
}

/** Builds the whole app from a validated configuration. `bin/dify.ts` and every test call this. */
export function createApp(app: App, config: Config): DifyApp {
  const description = `Dify ${config.difyVersion} on AWS, zero-trust by default (profile ${config.profile}, edge ${config.edge})`;
  const global =
    config.edge === 'cloudfront'
      ? new GlobalStack(app, `${config.stackName}-Global`, {
          config,
          env: { account: config.account, region: 'us-east-1' },
          crossRegionReferences: true,
          description: `${description}: CloudFront web ACL and certificate`,
        })
      : undefined;
  const main = new DifyStack(app, config.stackName, {
    config,
    env: { account: config.account, region: config.region },
    crossRegionReferences: global !== undefined,
    description,
    cloudFront:
      global === undefined
        ? undefined
        : {
            webAclArn: global.webAcl.arn,
            certificate: global.certificate,
            priceClass:
              cloudfront.PriceClass[
                (
                  {
                    PriceClass_100: 'PRICE_CLASS_100',
                    PriceClass_200: 'PRICE_CLASS_200',
                    PriceClass_All: 'PRICE_CLASS_ALL',
                  } as const
                )[config.cloudFrontPriceClass]
              ],
            geoAllowlist: config.cloudFrontGeoAllowlist,
          },
  });
  if (global !== undefined) main.addStackDependency(global);
  return { main, global };
}
