import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, CfnResource, Stack, Validations } from 'aws-cdk-lib';
import { CfnInclude } from 'aws-cdk-lib/cloudformation-include';
import type { IConstruct } from 'constructs';
import { nagPacks } from '../../lib/nag/acknowledge';
import type { Built } from './synth';

import type { TemplateJson } from './deployment-template';

export type { TemplateJson };

/**
 * Every stack's template exactly as `cdk synth` wrote it to the cloud assembly, by stack name: what
 * CloudFormation and any reviewer of the template read. The assembly is the one `build()` already
 * synthesized (CDK caches it), so this costs no second synth.
 */
export function synthesizedTemplates(built: Built): Record<string, TemplateJson> {
  const assembly = built.app.synth();
  return Object.fromEntries(
    built.stacks.stacks.map((stack) => [
      stack.stackName,
      JSON.parse(readFileSync(assembly.getStackArtifact(stack.artifactId).templateFullPath, 'utf8')),
    ]),
  );
}

/**
 * cloudformation-include (aws-cdk-lib 2.276) cannot parse `Fn::GetStackOutput`, which CDK itself
 * writes for cross-region references (`crossRegionReferences` with weak references: the CloudFront
 * distribution's web ACL from the us-east-1 stack). It becomes an `Fn::ImportValue` of the same
 * output, which the packs see as the same thing: an unresolved token.
 */
function includable(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(includable);
  if (value === null || typeof value !== 'object') return value;
  const object = value as Record<string, unknown>;
  const keys = Object.keys(object);
  if (keys.length === 1 && keys[0] === 'Fn::GetStackOutput') {
    const output = object['Fn::GetStackOutput'] as { StackName: string; Region: string; OutputName: string };
    return { 'Fn::ImportValue': `${output.Region}:${output.StackName}:${output.OutputName}` };
  }
  return Object.fromEntries(Object.entries(object).map(([key, item]) => [key, includable(item)]));
}

/** An acknowledged id as it reads once its template went through `includable`. */
function includableId(id: string): string {
  return id.replace(
    /\{"Fn::GetStackOutput":\{"StackName":"([^"]+)","Region":"([^"]+)","OutputName":"([^"]+)"\}\}/g,
    (_all, stack: string, region: string, output: string) => `${region}:${stack}:${output}`,
  );
}

/**
 * Turns each included resource's `Metadata.cdk_nag.rules_to_suppress` (what
 * `writeSuppressionsToCloudFormation` writes) into the acknowledged-rules metadata cdk-nag reads.
 * cdk-nag 3.0.2 reads only the construct metadata (`Validations.ACKNOWLEDGED_RULES_METADATA_KEY`),
 * never a resource's CloudFormation metadata, so without this an included template would report
 * every acknowledged finding again. Written directly, not through `acknowledge()`: the template may
 * hold ids of other packs (CDK's own `CloudFormation-Validate::…`), and it is not ours to judge here.
 */
export function acknowledgeFromTemplateMetadata(scope: IConstruct): void {
  for (const construct of scope.node.findAll()) {
    if (!CfnResource.isCfnResource(construct)) continue;
    const metadata = construct.cfnOptions.metadata as
      { cdk_nag?: { rules_to_suppress?: Array<{ id: string; reason: string }> } } | undefined;
    const rules = metadata?.cdk_nag?.rules_to_suppress ?? [];
    if (rules.length === 0) continue;
    construct.node.addMetadata(
      Validations.ACKNOWLEDGED_RULES_METADATA_KEY,
      Object.fromEntries(rules.map((rule) => [includableId(rule.id), rule.reason])),
    );
  }
}

export interface TemplateFindingsOptions {
  /**
   * Whether the acknowledgements the template records count.
   * @default true - as a reviewer would run it; `false` lists every finding, acknowledged or not
   */
  readonly honourAcknowledgements?: boolean;
}

/**
 * The findings of the three packs over a template as a reader of the template sees it: included
 * into a fresh app through cloudformation-include, with nothing of the app's construct tree.
 * Each finding reads `rule @ logical id`.
 */
export function templateFindings(template: TemplateJson, options: TemplateFindingsOptions = {}): string[] {
  const app = new App();
  const stack = new Stack(app, 'Included');
  // cloudformation-include reads only files; the copy lives as long as the constructor call.
  const dir = mkdtempSync(join(tmpdir(), 'nag-template-'));
  try {
    const file = join(dir, 'template.json');
    writeFileSync(file, JSON.stringify(includable(template)));
    new CfnInclude(stack, 'Template', { templateFile: file });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (options.honourAcknowledgements ?? true) acknowledgeFromTemplateMetadata(stack);
  return nagPacks().flatMap((pack) =>
    pack.validateScope(app).violations.flatMap((violation) =>
      // Included resources sit at `Included/Template/<logical id>`.
      violation.violatingResources.map(
        (resource) => `${violation.ruleName} @ ${resource.constructPath?.split('/').pop()}`,
      ),
    ),
  );
}
