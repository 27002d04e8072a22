import { readFileSync } from 'node:fs';
import { App, CfnResource, Stack } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { acknowledge, registerNagPacks } from '../../lib/nag/acknowledge';
import { repoPath } from '../../lib/paths';
import { acknowledgementDocument, acknowledgementsOf } from '../../scripts/doc-tables';
import { build, nagFindings, VARIANTS } from '../helpers/synth';
import { resources } from '../helpers/template';

describe.each(Object.entries(VARIANTS))('cdk-nag on variant %s', (_name, context) => {
  const { app, template } = build(context);

  it('has no unacknowledged finding in AwsSolutions, NIST.800-53.R5 or HIPAA.Security', () => {
    // On failure the list reads `rule @ construct path`: fix the resource, or acknowledge the finding
    // where the resource is defined, with the compensating control.
    expect(nagFindings(app)).toEqual([]);
  });

  it('acknowledges only on resources, never on a stack or a whole subtree', () => {
    for (const construct of app.node.findAll()) {
      // CDK acknowledges some of its own CloudFormation-validation rules on its constructs; ours are the packs'.
      const acknowledged = construct.node.metadata.some(
        (m) =>
          m.type === 'aws:cdk:acknowledged-rules' &&
          Object.keys(m.data).some((id) => !id.startsWith('CloudFormation-Validate::')),
      );
      if (acknowledged)
        expect({ path: construct.node.path, resource: CfnResource.isCfnResource(construct) }).toEqual({
          path: construct.node.path,
          resource: true,
        });
    }
  });

  it('records every acknowledgement and its reason in the template', () => {
    const inTemplate = resources(template)
      .flatMap(
        ([, r]) =>
          (r.Metadata?.cdk_nag as { rules_to_suppress?: Array<{ id: string; reason: string }> })?.rules_to_suppress ??
          [],
      )
      .map((rule) => `${rule.id}: ${rule.reason}`)
      .filter((rule) => !rule.startsWith('CloudFormation-Validate::'));
    const acknowledged = acknowledgementsOf(app).map((a) => `${a.rule}: ${a.reason}`);
    expect(acknowledged.length).toBeGreaterThan(0);
    expect(new Set(inTemplate)).toEqual(new Set(acknowledged));
  });
});

describe('the acknowledgement helper', () => {
  const scope = () => new CfnResource(new Stack(new App(), 'S'), 'R', { type: 'AWS::S3::Bucket' });

  it('refuses an id that is not a rule of our three packs', () => {
    expect(() => acknowledge(scope(), { id: 'AwsSolutions', reason: 'x'.repeat(50) })).toThrow(/not a cdk-nag rule id/);
    expect(() => acknowledge(scope(), { id: 'PCI.DSS.321-S3BucketLoggingEnabled', reason: 'x'.repeat(50) })).toThrow();
  });

  it('refuses a reason that does not name a compensating control', () => {
    expect(() => acknowledge(scope(), { id: 'AwsSolutions-S1', reason: 'not needed' })).toThrow(/compensating control/);
  });

  it('accepts granular ids with several `::`, which cdk-nag 3.0.x’s own acknowledge() rejects', () => {
    const resource = scope();
    acknowledge(resource, { id: 'AwsSolutions-IAM5[Resource::arn:aws:s3:::bucket/*]', reason: 'x'.repeat(50) });
    expect(resource.node.metadata.find((m) => m.type === 'aws:cdk:acknowledged-rules')?.data).toEqual({
      'AwsSolutions-IAM5[Resource::arn:aws:s3:::bucket/*]': 'x'.repeat(50),
    });
  });
});

describe('nag packs registered as bin/ does', () => {
  it('make synthesis fail on an unacknowledged finding', () => {
    const app = new App();
    const stack = new Stack(app, 'Probe');
    // A bucket with CDK's defaults: no access log (AwsSolutions-S1), no TLS-only policy.
    new s3.Bucket(stack, 'Bare');
    registerNagPacks(app);
    expect(() => app.synth()).toThrow(/AwsSolutions-S1'/);
  });
});

describe('docs/nag-acknowledgements.md', () => {
  it('is up to date (run `npm run docs`)', () => {
    const apps = Object.fromEntries(Object.entries(VARIANTS).map(([name, context]) => [name, build(context).app]));
    expect(readFileSync(repoPath('docs/nag-acknowledgements.md'), 'utf8')).toBe(acknowledgementDocument(apps));
  });
});
