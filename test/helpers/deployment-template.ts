/** A CloudFormation template as JSON. */
export type TemplateJson = { Resources?: Record<string, unknown>; Outputs?: Record<string, unknown> } & Record<
  string,
  unknown
>;

interface Output {
  readonly Value: unknown;
  readonly Export?: unknown;
}

/**
 * CDK's outputs that carry a value to another stack (weak references, `Fn::GetStackOutput`); not
 * outputs of the deployment's own (contracts/stack-outputs.ts).
 */
export const isReferenceOutput = (name: string) => name.startsWith('PublishOutput');

/**
 * The stacks named in `deployment`, as one template: their resources (a logical id used twice is
 * an error) and their own outputs, each `Fn::GetStackOutput` of one of them replaced by the value
 * its output carries. References to other stacks (the us-east-1 one) stay as they are.
 */
export function mergeDeployment(templates: Record<string, TemplateJson>, deployment: readonly string[]): TemplateJson {
  const outputs = new Map<string, unknown>();
  for (const name of deployment) {
    for (const [id, output] of Object.entries(templates[name].Outputs ?? {}))
      outputs.set(`${name}/${id}`, (output as Output).Value);
  }
  const resolve = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(resolve);
    if (value === null || typeof value !== 'object') return value;
    const object = value as Record<string, unknown>;
    const reference = object['Fn::GetStackOutput'] as { StackName: string; OutputName: string } | undefined;
    if (reference !== undefined && deployment.includes(reference.StackName)) {
      const key = `${reference.StackName}/${reference.OutputName}`;
      if (!outputs.has(key)) throw new Error(`Fn::GetStackOutput of ${key}: no such output`);
      return resolve(outputs.get(key));
    }
    return Object.fromEntries(Object.entries(object).map(([key, item]) => [key, resolve(item)]));
  };
  const merged: TemplateJson = { Resources: {}, Outputs: {} };
  for (const name of deployment) {
    const template = templates[name];
    for (const section of ['Parameters', 'Rules', 'Conditions', 'Mappings'] as const) {
      if (template[section] !== undefined)
        merged[section] = { ...(merged[section] as object), ...(template[section] as object) };
    }
    for (const [id, resource] of Object.entries(template.Resources ?? {})) {
      if (id in merged.Resources!) throw new Error(`logical id ${id} is in two stacks of the deployment`);
      merged.Resources![id] = resolve(resource);
    }
    for (const [id, output] of Object.entries(template.Outputs ?? {})) {
      if (isReferenceOutput(id)) continue;
      if (id in merged.Outputs!) throw new Error(`output ${id} is in two stacks of the deployment`);
      merged.Outputs![id] = resolve(output);
    }
  }
  return merged;
}
