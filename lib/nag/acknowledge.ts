import { CfnResource, Stack, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks, type NagPack } from 'cdk-nag';
import type { IConstruct } from 'constructs';

/**
 * One accepted finding: the narrowest id cdk-nag reports (`AwsSolutions-IAM5[Resource::*]`, never a
 * bare pack or a whole rule for a whole stack) and the compensating control that makes it acceptable.
 */
export interface Acknowledgement {
  readonly id: string;
  readonly reason: string;
}

/** The same finding in the NIST 800-53 rev 5 and HIPAA Security packs, which share most rule names. */
export function nistAndHipaa(rule: string, reason: string): Acknowledgement[] {
  return [
    { id: `NIST.800.53.R5-${rule}`, reason },
    { id: `HIPAA.Security-${rule}`, reason },
  ];
}

const RULE_ID = /^(AwsSolutions|NIST\.800\.53\.R5|HIPAA\.Security)-[A-Za-z0-9]+(\[.+\])?$/;

/**
 * Acknowledges cdk-nag findings on the construct that owns the resource.
 *
 * The metadata is written directly instead of through `Validations.acknowledge()`, because
 * cdk-nag 3.0.x's `acknowledge()` throws on ids that contain two or more `::`
 * (cdklabs/cdk-nag#2351); cdk-nag reads the same metadata key either way, and
 * `writeSuppressionsToCloudFormation` copies each reason into the template.
 */
export function acknowledge(scope: IConstruct, ...acknowledgements: Acknowledgement[]): void {
  const data: Record<string, string> = {};
  for (const { id, reason } of acknowledgements) {
    if (!RULE_ID.test(id)) {
      throw new Error(`acknowledge(${scope.node.path}): '${id}' is not a cdk-nag rule id of the three packs we run`);
    }
    if (reason.trim().length < 40) {
      throw new Error(
        `acknowledge(${scope.node.path}, ${id}): the reason must name the compensating control (40 characters at least)`,
      );
    }
    data[id] = reason;
  }
  scope.node.addMetadata(Validations.ACKNOWLEDGED_RULES_METADATA_KEY, data);
}

/** The packs every variant must pass. `bin/` registers them, so `cdk synth` fails on any finding. */
export function nagPacks(scope?: IConstruct): NagPack[] {
  const props = { verbose: true, writeSuppressionsToCloudFormation: true };
  return [
    new AwsSolutionsChecks(scope, props),
    new NIST80053R5Checks(scope, props),
    new HIPAASecurityChecks(scope, props),
  ];
}

/** Registers the packs on an app, so synthesis is interrupted by any unacknowledged finding. */
export function registerNagPacks(app: IConstruct): void {
  Validations.of(app).addPlugins(...nagPacks(app));
}

/**
 * How cdk-nag spells a resource in a granular finding id (`AwsSolutions-IAM5[Resource::…]`): the
 * resolved value with each `Ref` written `<Name>` and each `Fn::GetAtt` written `<Name.Attribute>`.
 * Lets an acknowledgement name exactly the ARN a statement grants, token parts included.
 */
export function nagResource(scope: IConstruct, value: string): string {
  const render = (node: unknown): string => {
    if (typeof node === 'string') return node;
    if (typeof node === 'object' && node !== null) {
      const object = node as Record<string, unknown>;
      if ('Ref' in object) return `<${String(object.Ref)}>`;
      if ('Fn::GetAtt' in object) return `<${(object['Fn::GetAtt'] as string[]).join('.')}>`;
      // A reference to another stack's output, which cdk-nag spells as the intrinsic's JSON.
      if ('Fn::GetStackOutput' in object) return JSON.stringify(object);
      if ('Fn::Join' in object) {
        const [separator, parts] = object['Fn::Join'] as [string, unknown[]];
        return parts.map(render).join(separator);
      }
    }
    throw new Error(`nagResource(${scope.node.path}): cannot render ${JSON.stringify(node)}`);
  };
  return render(Stack.of(scope).resolve(value));
}

/**
 * Acknowledges the wildcard finding (AwsSolutions-IAM5) on one resource a policy statement grants,
 * spelled as cdk-nag reads it in the synthesized template.
 *
 * The id is rendered when the app is validated: by then CDK has turned references to other stacks
 * into `Fn::GetStackOutput`, so the id names the resource as the template does, whichever stack the
 * resource lives in. Validation runs after the aspects and before the templates are written, so the
 * acknowledgement is also appended to the resource's `cdk_nag` template metadata here, where the
 * packs' own aspect (which ran earlier) would have put it.
 */
export function acknowledgeGrantedResource(construct: IConstruct, resource: string, reason: string): void {
  if (!CfnResource.isCfnResource(construct))
    throw new Error(`${construct.node.path}: acknowledge on the policy resource`);
  const policy: CfnResource = construct;
  policy.node.addValidation({
    validate: () => {
      const id = `AwsSolutions-IAM5[Resource::${nagResource(policy, resource)}]`;
      acknowledge(policy, { id, reason });
      const recorded = (policy.getMetadata('cdk_nag') as { rules_to_suppress?: unknown[] } | undefined) ?? {};
      policy.addMetadata('cdk_nag', {
        ...recorded,
        rules_to_suppress: [...(recorded.rules_to_suppress ?? []), { id, reason }],
      });
      return [];
    },
  });
}
