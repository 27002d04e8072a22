import type { TemplateJson } from './deployment-template';

/**
 * Compares what two templates create, whatever the logical ids: each resource as its type, its
 * properties and its retention (DeletionPolicy, UpdateReplacePolicy), with references to other
 * resources written as the identity of the resource they point at. Two resources are the same when
 * they have the same logical id and type, or, once their references are resolved that way, the same
 * signature. Used to show that splitting the deployment into stacks moved resources and changed none.
 *
 * What a move legitimately changes is normalized, and nothing else:
 * - names CDK derives from the construct path, which starts with the stack's id (the `Name` tags of
 *   VPC resources, a provider's description, Application Auto Scaling policy names): the stack ids of
 *   `moved` are read as the deployment's own;
 * - a policy named after its own logical id;
 * - the order of the resources and actions of a policy statement, which CDK sorts by their tokens.
 */
export interface ResourceSetDifference {
  /** Signatures only in the first template, with their logical ids. */
  readonly onlyInFirst: Array<{ id: string; signature: string }>;
  readonly onlyInSecond: Array<{ id: string; signature: string }>;
  /** Resources matched only by signature, their logical ids having changed: first -> second. */
  readonly renamed: Record<string, string>;
}

interface Resource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly DeletionPolicy?: string;
  readonly UpdateReplacePolicy?: string;
}

export interface CompareOptions {
  /** The deployment's name (the main stack's). */
  readonly deployment: string;
  /** The suffixes of the stacks resources moved into (`Foundation` for `<deployment>-Foundation`). */
  readonly moved: readonly string[];
}

export function compareResourceSets(
  first: TemplateJson,
  second: TemplateJson,
  options: CompareOptions,
): ResourceSetDifference {
  const a = first.Resources as Record<string, Resource>;
  const b = second.Resources as Record<string, Resource>;
  const { deployment, moved } = options;
  const pathPrefix = new RegExp(`\\b${deployment}-(${moved.join('|')})/`, 'g');
  // Names CDK makes from the path: the stack id without its hyphen, the path, then an 8-digit hash.
  const generated = new RegExp(`^${deployment}(${moved.join('|')})?([A-Za-z0-9]*?)[0-9A-F]{8}$`);
  const normalizeString = (text: string): string =>
    text.replace(pathPrefix, `${deployment}/`).replace(generated, `${deployment}$2#`);

  const identityA: Record<string, string> = {};
  const identityB: Record<string, string> = {};
  for (const id of Object.keys(a)) {
    if (b[id]?.Type === a[id].Type) identityA[id] = identityB[id] = id;
  }
  const signatures = (resources: Record<string, Resource>, identity: Record<string, string>) => {
    const known = (id: string) => identity[id] ?? (id in resources ? '?' : id);
    const canonical = (value: unknown): unknown => {
      if (typeof value === 'string') {
        // Substitutions name resources too: ${Id} and ${Id.Attribute}.
        return normalizeString(value).replace(
          /\$\{([A-Za-z0-9]+)((?:\.[A-Za-z0-9]+)*)\}/g,
          (_all, id: string, attribute: string) => `\${${known(id)}${attribute}}`,
        );
      }
      if (Array.isArray(value)) return value.map(canonical);
      if (value === null || typeof value !== 'object') return value;
      const object = value as Record<string, unknown>;
      if (typeof object.Ref === 'string' && Object.keys(object).length === 1) return { Ref: known(object.Ref) };
      const getAtt = object['Fn::GetAtt'];
      if (Array.isArray(getAtt) && Object.keys(object).length === 1) {
        return { 'Fn::GetAtt': [known(String(getAtt[0])), ...getAtt.slice(1)] };
      }
      return Object.fromEntries(Object.entries(object).map(([key, item]) => [key, canonical(item)]));
    };
    const sortStatements = (document: unknown) => {
      const statements = (document as { Statement?: Array<Record<string, unknown>> } | undefined)?.Statement ?? [];
      for (const statement of statements) {
        for (const field of ['Resource', 'Action']) {
          const list = statement[field];
          if (Array.isArray(list)) {
            statement[field] = [...list].sort((x, y) => stable(canonical(x)).localeCompare(stable(canonical(y))));
          }
        }
      }
    };
    return Object.fromEntries(
      Object.entries(resources).map(([id, resource]) => {
        const properties = structuredClone(resource.Properties ?? {}) as Record<string, unknown>;
        if (properties.PolicyName === id) properties.PolicyName = '<own logical id>';
        sortStatements(properties.PolicyDocument);
        sortStatements(properties.KeyPolicy);
        const signature = stable({
          type: resource.Type,
          properties: canonical(properties),
          deletion: resource.DeletionPolicy ?? null,
          replacement: resource.UpdateReplacePolicy ?? null,
        });
        return [id, signature];
      }),
    );
  };

  // Match what was renamed, as references resolve: a resource is identified once everything it
  // points at is. Each round can only add matches, so this ends.
  const renamed: Record<string, string> = {};
  for (let round = 0; ; round++) {
    const sa = signatures(a, identityA);
    const sb = signatures(b, identityB);
    const waiting = new Map<string, string[]>();
    for (const id of Object.keys(a)) {
      if (identityA[id] === undefined) waiting.set(sa[id], [...(waiting.get(sa[id]) ?? []), id]);
    }
    let matched = 0;
    for (const id of Object.keys(b)) {
      if (identityB[id] !== undefined) continue;
      const candidates = waiting.get(sb[id]);
      const from = candidates?.shift();
      if (from === undefined) continue;
      identityA[from] = identityB[id] = `#${from}`;
      renamed[from] = id;
      matched++;
    }
    if (matched === 0 || round > 20) {
      const countA = count(Object.entries(sa));
      const countB = count(Object.entries(sb));
      return {
        onlyInFirst: surplus(countA, countB),
        onlyInSecond: surplus(countB, countA),
        renamed,
      };
    }
  }
}

function stable(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stable).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${stable((value as Record<string, unknown>)[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

function count(entries: Array<[string, string]>): Map<string, string[]> {
  const bySignature = new Map<string, string[]>();
  for (const [id, signature] of entries) bySignature.set(signature, [...(bySignature.get(signature) ?? []), id]);
  return bySignature;
}

function surplus(mine: Map<string, string[]>, theirs: Map<string, string[]>): Array<{ id: string; signature: string }> {
  return [...mine.entries()].flatMap(([signature, ids]) =>
    ids.slice(theirs.get(signature)?.length ?? 0).map((id) => ({ id, signature })),
  );
}
