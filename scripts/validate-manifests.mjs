// Validates Kubernetes objects against the Kubernetes schemas, offline (kubernetes-models, ESM-only,
// hence a script of its own). Reads a JSON array of objects on stdin and prints one JSON line:
// { valid: [...ids], invalid: [{ id, errors }], unknown: [...ids] }, where `unknown` lists the kinds
// kubernetes-models has no schema for (custom resources). Exits 0 whatever it finds: the caller judges.
//
//   node scripts/validate-manifests.mjs < objects.json
import { readFileSync } from 'node:fs';

const objects = JSON.parse(readFileSync(0, 'utf8'));
const report = { valid: [], invalid: [], unknown: [] };
for (const object of objects) {
  const id = `${object.kind}/${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`;
  const [group, version] = object.apiVersion.includes('/')
    ? object.apiVersion.split('/')
    : [undefined, object.apiVersion];
  const module =
    group === undefined
      ? `kubernetes-models/${version}/${object.kind}`
      : `kubernetes-models/${group}/${version}/${object.kind}`;
  let Model;
  try {
    Model = (await import(module))[object.kind];
  } catch {
    report.unknown.push(id);
    continue;
  }
  try {
    new Model(object).validate();
    report.valid.push(id);
  } catch (error) {
    report.invalid.push({ id, errors: String(error.message) });
  }
}
console.log(JSON.stringify(report));
