#!/usr/bin/env node
import { App } from 'aws-cdk-lib';
import { createApp } from '../lib/app';
import { ConfigError, loadConfig } from '../lib/config/load';
import { registerNagPacks } from '../lib/nag/acknowledge';

const app = new App();
try {
  createApp(app, loadConfig(app));
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  // A configuration mistake is the user's to fix: print what and where, not a stack trace.
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}
registerNagPacks(app);
app.synth();
