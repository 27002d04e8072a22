// Evaluates ValidatingAdmissionPolicies over pods, offline, with a CEL implementation
// (@marcbachmann/cel-js, ESM-only, hence a script of its own). Reads on stdin
// { objects: [...policies and bindings], pods: [{ namespace, spec, metadata }] } and prints one JSON
// line: for each pod, the messages of the validations it fails (empty: admitted). Exits 0 whatever
// it finds; an expression that does not evaluate is reported as a failure with its error.
//
//   node scripts/evaluate-admission.mjs < input.json
import { readFileSync } from 'node:fs';
import { evaluate } from '@marcbachmann/cel-js';

const { objects, pods } = JSON.parse(readFileSync(0, 'utf8'));
const policies = Object.fromEntries(
  objects.filter((o) => o.kind === 'ValidatingAdmissionPolicy').map((p) => [p.metadata.name, p]),
);
const bindings = objects.filter((o) => o.kind === 'ValidatingAdmissionPolicyBinding');

/** Whether a binding's namespace selector (matchExpressions on the namespace's name) takes `namespace`. */
function binds(binding, namespace) {
  const expressions = binding.spec.matchResources?.namespaceSelector?.matchExpressions ?? [];
  return expressions.every((e) => {
    if (e.key !== 'kubernetes.io/metadata.name') throw new Error(`unsupported selector key ${e.key}`);
    if (e.operator === 'In') return e.values.includes(namespace);
    if (e.operator === 'NotIn') return !e.values.includes(namespace);
    throw new Error(`unsupported selector operator ${e.operator}`);
  });
}

const results = pods.map((pod) => {
  const failures = [];
  for (const binding of bindings.filter((b) => binds(b, pod.namespace))) {
    const policy = policies[binding.spec.policyName];
    if (policy === undefined) {
      failures.push(`binding ${binding.metadata.name} names no policy`);
      continue;
    }
    for (const validation of policy.spec.validations) {
      let ok;
      try {
        ok = evaluate(validation.expression, { object: { metadata: pod.metadata ?? {}, spec: pod.spec } });
      } catch (error) {
        failures.push(`${policy.metadata.name}: cannot evaluate: ${error.message}`);
        continue;
      }
      if (ok !== true) failures.push(`${policy.metadata.name}: ${validation.message}`);
    }
  }
  return failures;
});
console.log(JSON.stringify(results));
