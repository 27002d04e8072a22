import type { Template } from 'aws-cdk-lib/assertions';
import { resources } from './template';

/** A manifest as the kubectl provider receives it: its resource id and the objects it applies. */
export interface AppliedManifest {
  readonly id: string;
  readonly objects: Array<Record<string, any>>;
  /** The manifest's JSON as the template carries it, tokens shown as `«token»`: what the size limit applies to. */
  readonly text: string;
}

/** A CloudFormation value with its intrinsics (a reference, an attribute, a substitution's variables) shown as `«token»`. */
function render(value: unknown): string {
  if (typeof value === 'string') return value;
  const join = (value as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
  if (join !== undefined) return join[1].map(render).join(join[0]);
  // A substitution keeps its literal parts, so that two spellings of one address compare equal.
  const sub = (value as { 'Fn::Sub'?: unknown })['Fn::Sub'];
  if (typeof sub === 'string') return sub.replace(/\$\{[^}]+\}/g, '«token»');
  return '«token»';
}

/**
 * Every Kubernetes object the template applies (`Custom::AWSCDK-EKS-KubernetesResource`), parsed
 * from the manifest JSON the kubectl provider receives, with CloudFormation's values shown as
 * `«token»` and CDK's prune label left out.
 */
export function appliedManifests(template: Template): AppliedManifest[] {
  return resources(template, 'Custom::AWSCDK-EKS-KubernetesResource').map(([id, resource]) => {
    const text = render(resource.Properties?.Manifest);
    const objects = (JSON.parse(text) as Array<Record<string, any>>).map((object) => {
      const labels = Object.fromEntries(
        Object.entries((object.metadata?.labels as Record<string, string>) ?? {}).filter(
          ([key]) => !key.startsWith('aws.cdk.eks/prune-'),
        ),
      );
      const metadata = { ...(object.metadata ?? {}) };
      delete metadata.labels;
      return { ...object, metadata: Object.keys(labels).length === 0 ? metadata : { ...metadata, labels } };
    });
    return { id, objects, text };
  });
}
