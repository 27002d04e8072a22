import type { App } from 'aws-cdk-lib';
import type { Config } from './config/schema';
import { DifyStack } from './stacks/dify-stack';

/** Every stack of the app, as `bin/` and the tests build them. */
export interface DifyApp {
  readonly main: DifyStack;
}

/** Builds the whole app from a validated configuration. `bin/dify.ts` and every test call this. */
export function createApp(app: App, config: Config): DifyApp {
  const main = new DifyStack(app, config.stackName, {
    config,
    env:
      config.account !== undefined || config.region !== undefined
        ? { account: config.account, region: config.region }
        : undefined,
    description: `Dify ${config.difyVersion} on AWS, zero-trust by default (profile ${config.profile})`,
  });
  return { main };
}
