// `npm run pr:diff -- --base <dir> --head <dir> [--out <file>]`: compares two sets of synthesized
// templates stack by stack and writes ONE markdown pull-request comment: at the top, the changes a
// security reviewer must look at (IAM, security groups, KMS key policies, WAF, deletion and retention),
// then a resource-level diff per stack. The pull-request workflow posts it (.github/workflows/pr.yml).
//
// A side is a cloud assembly (a folder with manifest.json), a folder of cloud assemblies (one per
// variant, as `npm run synth:variants` writes them, with <variant>.error.txt for one that failed), or a
// folder of <stack>.template.json files (the deployed templates `npm run pr:deployed` fetches).
//
// The flagging is this file's own reading of the template JSON, so it is tested on templates
// (test/scripts/pr-diff.test.ts). Resource Metadata is never read or printed, and every value shown is
// cut at VALUE_LIMIT characters. Templates hold no secret by design (test/app/security.test.ts).
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

/** The hidden marker by which the workflow finds its previous comment and updates it. */
export const COMMENT_MARKER = '<!-- dify-pr-diff -->';
/** The list `npm run pr:deployed` writes beside the templates it fetched. */
export const DEPLOYED_LIST = 'deployed-stacks.json';
/** Longest value shown, in characters. */
export const VALUE_LIMIT = 160;
/** GitHub refuses a comment over 65,536 characters; leave room for the marker and the footer. */
export const COMMENT_LIMIT = 60_000;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** A CloudFormation template as JSON. */
export type TemplateJson = JsonObject;

/** One side of the comparison: templates by variant, then by stack name. */
export interface Side {
  /** Variant name ('' for a single assembly or a folder of templates) -> stack name -> template. */
  readonly variants: Record<string, Record<string, TemplateJson>>;
  /** Variants that failed to synthesize on this side, with the reason's first lines. */
  readonly failed: Record<string, string>;
}

/** One changed value inside a resource (or an output, parameter, ...). */
export interface PathChange {
  /** Where, from the resource: `Properties.PolicyDocument.Statement[1].Action`, `DeletionPolicy`. */
  readonly path: string;
  readonly kind: 'added' | 'removed' | 'changed';
  readonly before?: Json;
  readonly after?: Json;
}

/** What happened to one entry of a template section (a resource, an output, a parameter...). */
export interface EntryChange {
  readonly section: string;
  readonly id: string;
  /** The resource type (the head's when both sides have one); '' outside Resources. */
  readonly type: string;
  readonly kind: 'added' | 'removed' | 'modified';
  readonly changes: readonly PathChange[];
  /** The entry on each side (Metadata removed). */
  readonly before?: Json;
  readonly after?: Json;
}

/** The security-relevant categories a change is flagged for. */
export type FlagCategory = 'IAM' | 'Security group' | 'KMS' | 'WAF' | 'Deletion/retention';

/** Why a change is flagged. */
export interface Flag {
  readonly category: FlagCategory;
  readonly reason: string;
}

/** The comparison of one stack in one variant. */
export interface StackDiff {
  readonly variant: string;
  readonly stack: string;
  readonly status: 'added' | 'removed' | 'modified' | 'unchanged';
  readonly entries: readonly EntryChange[];
}

// ---------------------------------------------------------------------------------------------
// Reading the two sides

function readJson(path: string): JsonObject {
  return JSON.parse(readFileSync(path, 'utf8')) as JsonObject;
}

/** The stacks of a cloud assembly, by stack name. */
function readAssembly(dir: string): Record<string, TemplateJson> {
  const manifest = readJson(join(dir, 'manifest.json'));
  const stacks: Record<string, TemplateJson> = {};
  const artifacts = (manifest.artifacts ?? {}) as Record<string, JsonObject>;
  for (const [id, artifact] of Object.entries(artifacts)) {
    if (artifact.type === 'cdk:cloud-assembly') {
      // A stage's nested assembly: its stacks are deployed like the others.
      const nested = (artifact.properties as JsonObject).directoryName as string;
      Object.assign(stacks, readAssembly(join(dir, nested)));
    }
    if (artifact.type !== 'aws:cloudformation:stack') continue;
    const properties = artifact.properties as JsonObject;
    const name = (properties.stackName as string | undefined) ?? id;
    stacks[name] = readJson(join(dir, properties.templateFile as string));
  }
  return stacks;
}

/** The templates of a folder of `<stack>.template.json` files, by stack name. */
function readTemplateFolder(dir: string): Record<string, TemplateJson> {
  return Object.fromEntries(
    readdirSync(dir)
      .filter((name) => name.endsWith('.template.json'))
      .sort()
      .map((name) => [name.slice(0, -'.template.json'.length), readJson(join(dir, name))]),
  );
}

/** Reads one side: a cloud assembly, a folder of per-variant assemblies, or a folder of templates. */
export function readSide(dir: string): Side {
  const root = resolve(dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new Error(`${dir}: not a folder; expected a cloud assembly, a folder of them, or of *.template.json`);
  }
  if (existsSync(join(root, 'manifest.json'))) return { variants: { '': readAssembly(root) }, failed: {} };
  const variants: Record<string, Record<string, TemplateJson>> = {};
  const failed: Record<string, string> = {};
  for (const name of readdirSync(root).sort()) {
    const path = join(root, name);
    if (statSync(path).isDirectory() && existsSync(join(path, 'manifest.json'))) variants[name] = readAssembly(path);
    else if (name.endsWith('.error.txt')) {
      failed[name.slice(0, -'.error.txt'.length)] = readFileSync(path, 'utf8').split('\n').slice(0, 3).join(' ').trim();
    }
  }
  if (Object.keys(variants).length > 0 || Object.keys(failed).length > 0) return { variants, failed };
  const templates = readTemplateFolder(root);
  // `npm run pr:deployed` writes deployed-stacks.json beside the templates, even when none is deployed yet.
  if (Object.keys(templates).length === 0 && !existsSync(join(root, DEPLOYED_LIST))) {
    throw new Error(
      `${dir}: no manifest.json, no variant folder and no *.template.json; expected a cloud assembly, a folder of them, or of templates`,
    );
  }
  return { variants: { '': templates }, failed: {} };
}

// ---------------------------------------------------------------------------------------------
// Diffing

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function same(a: Json | undefined, b: Json | undefined): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function keyPath(base: string, key: string): string {
  const plain = /^[A-Za-z_][A-Za-z0-9_:.-]*$/.test(key) && !key.includes('.');
  if (plain) return base === '' ? key : `${base}.${key}`;
  return `${base}[${JSON.stringify(key)}]`;
}

/**
 * The differences between two JSON values, as paths. Arrays are compared as lists of elements: an
 * element found on one side only is `[+]` (added) or `[-]` (removed), so inserting a statement does
 * not show every later one as changed; when exactly one element changed in place, its inner paths are
 * shown instead. A list with the same elements in another order is `reordered`.
 */
export function diffValues(before: Json | undefined, after: Json | undefined, path = ''): PathChange[] {
  if (same(before, after)) return [];
  if (before === undefined) return [{ path, kind: 'added', after }];
  if (after === undefined) return [{ path, kind: 'removed', before }];
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((key) => diffValues(before[key], after[key], keyPath(path, key)));
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    const afterLeft = after.map((element) => JSON.stringify(element));
    const removedAt: number[] = [];
    before.forEach((element, index) => {
      const match = afterLeft.indexOf(JSON.stringify(element));
      if (match >= 0) afterLeft[match] = '\u0000matched';
      else removedAt.push(index);
    });
    const addedAt = afterLeft.flatMap((text, index) => (text === '\u0000matched' ? [] : [index]));
    if (removedAt.length === 0 && addedAt.length === 0) {
      return [{ path, kind: 'changed', before: `${before.length} elements`, after: 'the same elements, reordered' }];
    }
    if (removedAt.length === 1 && addedAt.length === 1 && removedAt[0] === addedAt[0]) {
      const at = removedAt[0];
      return diffValues(before[at], after[at], `${path}[${at}]`);
    }
    return [
      ...removedAt.map((index): PathChange => ({ path: `${path}[-]`, kind: 'removed', before: before[index] })),
      ...addedAt.map((index): PathChange => ({ path: `${path}[+]`, kind: 'added', after: after[index] })),
    ];
  }
  return [{ path, kind: 'changed', before, after }];
}

/** A template entry without what is never compared nor printed (resource Metadata). */
function withoutMetadata(entry: Json | undefined): Json | undefined {
  if (!isObject(entry)) return entry;
  const copy: JsonObject = { ...entry };
  delete copy.Metadata;
  return copy;
}

/** The sections compared, in the order the comment lists them. Template-level Metadata is skipped. */
const SECTIONS = ['Resources', 'Outputs', 'Parameters', 'Conditions', 'Mappings', 'Rules'] as const;

/** Every added, removed or modified entry between two templates (either may be absent). */
export function diffTemplates(before: TemplateJson | undefined, after: TemplateJson | undefined): EntryChange[] {
  const entries: EntryChange[] = [];
  for (const section of SECTIONS) {
    const left = (before?.[section] ?? {}) as JsonObject;
    const right = (after?.[section] ?? {}) as JsonObject;
    for (const id of [...new Set([...Object.keys(left), ...Object.keys(right)])].sort()) {
      const a = withoutMetadata(left[id]);
      const b = withoutMetadata(right[id]);
      if (same(a, b)) continue;
      const typeOf = (entry: Json | undefined) =>
        isObject(entry) && typeof entry.Type === 'string' && section === 'Resources' ? entry.Type : '';
      const type = typeOf(b) || typeOf(a);
      const kind = a === undefined ? 'added' : b === undefined ? 'removed' : 'modified';
      const changes = kind === 'modified' ? diffValues(a, b) : [];
      entries.push({ section, id, type, kind, changes, before: a, after: b });
    }
  }
  return entries;
}

// ---------------------------------------------------------------------------------------------
// Flagging: this file's own rules on the template JSON

/** Resource types whose removal deletes data (unless a DeletionPolicy keeps it). */
const STATEFUL_TYPES = new Set([
  'AWS::S3::Bucket',
  'AWS::RDS::DBCluster',
  'AWS::RDS::DBInstance',
  'AWS::Logs::LogGroup',
  'AWS::KMS::Key',
  'AWS::SecretsManager::Secret',
  'AWS::ElastiCache::ReplicationGroup',
  'AWS::ElastiCache::ServerlessCache',
  'AWS::DynamoDB::Table',
  'AWS::DynamoDB::GlobalTable',
  'AWS::EFS::FileSystem',
  'AWS::Backup::BackupVault',
  'AWS::ECR::Repository',
]);

/** Resource types that are an access policy on a resource (who may use it), beside IAM's own. */
const RESOURCE_POLICY_TYPES = new Set([
  'AWS::S3::BucketPolicy',
  'AWS::SNS::TopicPolicy',
  'AWS::SQS::QueuePolicy',
  'AWS::SecretsManager::ResourcePolicy',
  'AWS::Lambda::Permission',
  'AWS::Logs::ResourcePolicy',
  'AWS::Events::EventBusPolicy',
]);

/** Property names (one path segment) that hold a retention, a lifetime or a deletion safeguard. */
const RETENTION_KEY =
  /Retention|^Expiration|ExpirationInDays|NoncurrentVersionExpiration|ExpiredObjectDeleteMarker|DeleteAfterDays|MoveToColdStorageAfterDays|^DeletionProtection|^PendingWindowInDays$|^RecoveryWindowInDays$|^SnapshotRetentionLimit$|^PointInTimeRecovery|^ObjectLockConfiguration$|^VersioningConfiguration$|^TerminationProtection$/;

/** The path segments of a path: `A.B[0].C[+]` -> ['A', 'B', 'C']. */
function segments(path: string): string[] {
  return path
    .replace(/\[(?:\d+|[+-])\]/g, '')
    .replace(/\["([^"]*)"\]/g, '.$1')
    .split('.')
    .filter((part) => part !== '');
}

function describe(changes: readonly PathChange[], test: (path: string) => boolean): string {
  const paths = [...new Set(changes.filter((change) => test(change.path)).map((change) => change.path))];
  return paths.length <= 3 ? paths.join(', ') : `${paths.slice(0, 3).join(', ')} and ${paths.length - 3} more`;
}

function policyValue(entry: Json | undefined, name: string): string | undefined {
  return isObject(entry) && typeof entry[name] === 'string' ? (entry[name] as string) : undefined;
}

/** Why one entry's change needs a security reviewer's eyes; empty when it does not. */
export function flagsFor(entry: EntryChange): Flag[] {
  if (entry.section !== 'Resources') return [];
  const flags: Flag[] = [];
  const { type, kind, changes } = entry;
  const verb = kind === 'added' ? 'added' : kind === 'removed' ? 'removed' : undefined;
  const anyPath = (test: (parts: string[]) => boolean) => (path: string) => test(segments(path));
  const touched = (test: (parts: string[]) => boolean) => changes.some((change) => test(segments(change.path)));

  // IAM: identities, their policies, and the resource policies that grant access to a resource.
  if (type.startsWith('AWS::IAM::') || RESOURCE_POLICY_TYPES.has(type)) {
    flags.push({
      category: 'IAM',
      reason: verb ?? `changed ${describe(changes, () => true)}`,
    });
  } else {
    const iamPart = (parts: string[]) =>
      parts.some((part) =>
        ['Policies', 'AssumeRolePolicyDocument', 'PolicyDocument', 'ManagedPolicyArns', 'PermissionsBoundary'].includes(
          part,
        ),
      );
    if (kind === 'modified' && touched(iamPart)) {
      flags.push({ category: 'IAM', reason: `changed ${describe(changes, anyPath(iamPart))}` });
    }
  }

  // Security groups: the groups, their rules as resources or as properties, and which groups a resource is in.
  const sgTypes = ['AWS::EC2::SecurityGroup', 'AWS::EC2::SecurityGroupIngress', 'AWS::EC2::SecurityGroupEgress'];
  const naclTypes = ['AWS::EC2::NetworkAcl', 'AWS::EC2::NetworkAclEntry'];
  if (sgTypes.includes(type) || naclTypes.includes(type)) {
    flags.push({ category: 'Security group', reason: verb ?? `changed ${describe(changes, () => true)}` });
  } else {
    const sgPart = (parts: string[]) =>
      parts.some((part) =>
        [
          'SecurityGroupIngress',
          'SecurityGroupEgress',
          'SecurityGroups',
          'SecurityGroupIds',
          'VpcSecurityGroupIds',
        ].includes(part),
      );
    if (kind === 'modified' && touched(sgPart)) {
      flags.push({ category: 'Security group', reason: `changed ${describe(changes, anyPath(sgPart))}` });
    } else if (verb !== undefined && isObject(entry.after ?? entry.before)) {
      const properties = ((entry.after ?? entry.before) as JsonObject).Properties;
      if (isObject(properties) && (properties.SecurityGroupIngress ?? properties.SecurityGroupEgress) !== undefined) {
        flags.push({ category: 'Security group', reason: `${verb} with ingress or egress rules` });
      }
    }
  }

  // KMS: a key's policy decides who may decrypt everything under it.
  if (type === 'AWS::KMS::Key') {
    const policy = (parts: string[]) => parts[0] === 'Properties' && parts[1] === 'KeyPolicy';
    if (verb !== undefined) flags.push({ category: 'KMS', reason: `key ${verb}` });
    else if (touched(policy))
      flags.push({ category: 'KMS', reason: `key policy: ${describe(changes, anyPath(policy))}` });
    else flags.push({ category: 'KMS', reason: `key changed ${describe(changes, () => true)}` });
  }

  // WAF: the web ACL's rules, IP sets, rule groups, and what a web ACL is attached to.
  if (type.startsWith('AWS::WAFv2::')) {
    flags.push({ category: 'WAF', reason: verb ?? `changed ${describe(changes, () => true)}` });
  } else {
    const wafPart = (parts: string[]) => parts.some((part) => part === 'WebACLId' || part === 'WebAclArn');
    if (kind === 'modified' && touched(wafPart)) {
      flags.push({ category: 'WAF', reason: `web ACL attachment: ${describe(changes, anyPath(wafPart))}` });
    }
  }

  // Deletion and retention: what happens to data when the resource goes, and how long data is kept.
  const policyPart = (parts: string[]) => parts[0] === 'DeletionPolicy' || parts[0] === 'UpdateReplacePolicy';
  const retentionPart = (parts: string[]) => parts.some((part) => RETENTION_KEY.test(part));
  if (kind === 'modified' && touched(policyPart)) {
    const before = policyValue(entry.before, 'DeletionPolicy') ?? 'Delete (default)';
    const after = policyValue(entry.after, 'DeletionPolicy') ?? 'Delete (default)';
    const detail = before === after ? describe(changes, anyPath(policyPart)) : `DeletionPolicy ${before} -> ${after}`;
    flags.push({ category: 'Deletion/retention', reason: detail });
  }
  if (kind === 'modified' && touched(retentionPart)) {
    flags.push({ category: 'Deletion/retention', reason: `retention: ${describe(changes, anyPath(retentionPart))}` });
  }
  if (kind === 'removed') {
    const policy = policyValue(entry.before, 'DeletionPolicy');
    if (policy !== undefined && policy !== 'Delete') {
      flags.push({ category: 'Deletion/retention', reason: `removed; DeletionPolicy ${policy} keeps it, orphaned` });
    } else if (STATEFUL_TYPES.has(type) || policy !== undefined) {
      flags.push({ category: 'Deletion/retention', reason: 'removed, and its data is deleted with it' });
    }
  }
  if (kind === 'added' && STATEFUL_TYPES.has(type) && policyValue(entry.after, 'DeletionPolicy') === undefined) {
    flags.push({ category: 'Deletion/retention', reason: 'added with no DeletionPolicy: deleted with the stack' });
  }
  return flags;
}

/** Compares every stack of every variant present on either side. */
export function diffSides(base: Side, head: Side): StackDiff[] {
  const diffs: StackDiff[] = [];
  const variants = [...new Set([...Object.keys(base.variants), ...Object.keys(head.variants)])].sort();
  for (const variant of variants) {
    // A variant that failed on one side is reported as such, not as every stack added or removed.
    if (base.failed[variant] !== undefined || head.failed[variant] !== undefined) continue;
    const left = base.variants[variant] ?? {};
    const right = head.variants[variant] ?? {};
    for (const stack of [...new Set([...Object.keys(left), ...Object.keys(right)])].sort()) {
      const entries = diffTemplates(left[stack], right[stack]);
      const status =
        left[stack] === undefined
          ? 'added'
          : right[stack] === undefined
            ? 'removed'
            : entries.length === 0
              ? 'unchanged'
              : 'modified';
      diffs.push({ variant, stack, status, entries });
    }
  }
  return diffs;
}

// ---------------------------------------------------------------------------------------------
// Rendering the comment

/** A value for the comment: compact JSON, cut at VALUE_LIMIT characters, safe inside inline code. */
export function showValue(value: Json | undefined): string {
  if (value === undefined) return '(none)';
  let text = typeof value === 'string' ? value : JSON.stringify(value);
  text = text.replace(/[\r\n]+/g, ' ');
  if (text.length > VALUE_LIMIT) text = `${text.slice(0, VALUE_LIMIT)}… (${text.length} characters)`;
  return code(text);
}

function code(text: string): string {
  if (!text.includes('`')) return `\`${text}\``;
  return `\`\` ${text.replace(/`+/g, (ticks) => (ticks.length >= 2 ? "'".repeat(ticks.length) : ticks))} \`\``;
}

function changeLine(change: PathChange): string {
  const where = code(change.path === '' ? '(value)' : change.path);
  if (change.kind === 'added') return `${where}: added ${showValue(change.after)}`;
  if (change.kind === 'removed') return `${where}: removed ${showValue(change.before)}`;
  return `${where}: ${showValue(change.before)} → ${showValue(change.after)}`;
}

function entryTitle(entry: EntryChange): string {
  const sign = entry.kind === 'added' ? '+' : entry.kind === 'removed' ? '−' : '~';
  const what = entry.section === 'Resources' ? `(${entry.type})` : `(${entry.section.replace(/s$/, '').toLowerCase()})`;
  return `${sign} ${code(entry.id)} ${what}`;
}

/** Which variants an item appears in, for a label; '' when all of them, or with a single side. */
function variantLabel(variants: readonly string[], all: readonly string[]): string {
  if (all.length <= 1 || (variants.length === all.length && all.length > 0)) return '';
  const shown =
    variants.length <= 4 ? variants.join(', ') : `${variants.slice(0, 4).join(', ')} +${variants.length - 4}`;
  return ` _(${variants.length === 1 ? 'variant' : 'variants'} ${shown})_`;
}

/** Items that are the same in several variants, rendered once with the variants they appear in. */
function groupByVariant<T>(items: readonly { variant: string; item: T; key: string }[]) {
  const groups = new Map<string, { item: T; variants: string[] }>();
  for (const { variant, item, key } of items) {
    const group = groups.get(key);
    if (group) group.variants.push(variant);
    else groups.set(key, { item, variants: [variant] });
  }
  return [...groups.values()];
}

export interface RenderOptions {
  /** What the base is, for the heading: "the base branch (abc1234)", "the deployed stacks". */
  readonly baseLabel?: string;
  readonly headLabel?: string;
  /** `cdk diff`'s own text output, shown folded under the report. */
  readonly cdkDiff?: string;
  /** Where the full report is when the comment had to be shortened. */
  readonly fullReportHint?: string;
  readonly limit?: number;
}

/** The pull-request comment, in markdown, starting with COMMENT_MARKER. */
export function renderComment(base: Side, head: Side, options: RenderOptions = {}): string {
  const diffs = diffSides(base, head);
  const allVariants = [...new Set([...Object.keys(base.variants), ...Object.keys(head.variants)])].sort();
  // A change's variants are named against those compared: a variant that failed on one side is not.
  const compared = allVariants.filter(
    (variant) => base.failed[variant] === undefined && head.failed[variant] === undefined,
  );
  const header = [
    COMMENT_MARKER,
    '## Infrastructure diff',
    '',
    `${options.headLabel ?? 'This pull request'} against ${options.baseLabel ?? 'the base'}` +
      (allVariants.length > 1 || allVariants[0] !== ''
        ? `, over ${allVariants.length} variant${allVariants.length === 1 ? '' : 's'} (${allVariants.join(', ')}).`
        : '.'),
    '',
  ];
  const notes: string[] = [];
  for (const [variant, reason] of Object.entries(base.failed)) {
    notes.push(
      `- ⚠️ variant ${code(variant)} did not synthesize on the base, so it is not compared: ${showValue(reason)}`,
    );
  }
  for (const [variant, reason] of Object.entries(head.failed)) {
    notes.push(`- ❌ variant ${code(variant)} did not synthesize on this branch: ${showValue(reason)}`);
  }

  // The flagged changes, each once, with the variants it appears in.
  const flagged = groupByVariant(
    diffs.flatMap((diff) =>
      diff.entries.flatMap((entry) =>
        flagsFor(entry).map((flag) => ({
          variant: diff.variant,
          item: { stack: diff.stack, entry, flag },
          key: JSON.stringify([diff.stack, entry.id, entry.kind, flag]),
        })),
      ),
    ),
  );
  const flagLines = flagged.map(
    ({ item, variants }) =>
      `- **${item.flag.category}** · ${code(item.stack)} › ${code(item.entry.id)} (${item.entry.type}): ${item.flag.reason}` +
      variantLabel(variants, compared),
  );

  const changedStacks = diffs.filter((diff) => diff.status !== 'unchanged');
  if (changedStacks.length === 0 && notes.length === 0) {
    const stacks = new Set(diffs.map((diff) => diff.stack)).size;
    return [...header, `**No differences** in any of the ${stacks} stacks.`, ''].join('\n');
  }

  // One section per stack; within it, each change once, with the variants it appears in.
  const stackNames = [...new Set(changedStacks.map((diff) => diff.stack))].sort();
  const renderStacks = (withPaths: boolean): string[] =>
    stackNames.flatMap((stack) => {
      const ofStack = changedStacks.filter((diff) => diff.stack === stack);
      const lines = [`### ${code(stack)}`, ''];
      for (const status of ['added', 'removed'] as const) {
        const variants = ofStack.filter((diff) => diff.status === status).map((diff) => diff.variant);
        if (variants.length > 0) lines.push(`- **stack ${status}**${variantLabel(variants, compared)}`);
      }
      const entries = groupByVariant(
        ofStack.flatMap((diff) =>
          diff.entries.map((entry) => ({
            variant: diff.variant,
            item: entry,
            key: JSON.stringify([entry.section, entry.id, entry.kind, entry.changes]),
          })),
        ),
      );
      const counts = { added: 0, removed: 0, modified: 0 };
      for (const { item } of entries) if (item.section === 'Resources') counts[item.kind]++;
      lines.push(`- resources: ${counts.added} added, ${counts.removed} removed, ${counts.modified} modified`);
      for (const { item, variants } of entries) {
        const flags = flagsFor(item);
        const mark = flags.length > 0 ? ` ⚠️ ${[...new Set(flags.map((flag) => flag.category))].join(', ')}` : '';
        lines.push(`- ${entryTitle(item)}${mark}${variantLabel(variants, compared)}`);
        if (withPaths) for (const change of item.changes) lines.push(`  - ${changeLine(change)}`);
      }
      lines.push('');
      return lines;
    });

  const flagSection = [
    '### Flagged changes',
    '',
    ...(flagLines.length > 0
      ? flagLines
      : ['None: no change to IAM, security groups, KMS keys, WAF, deletion or retention.']),
    '',
  ];
  const cdkDiff =
    options.cdkDiff === undefined || options.cdkDiff.trim() === ''
      ? []
      : [
          '<details><summary><code>cdk diff</code> output</summary>',
          '',
          '```',
          cdkDiffText(options.cdkDiff),
          '```',
          '</details>',
          '',
        ];
  const limit = options.limit ?? COMMENT_LIMIT;
  const hint = options.fullReportHint ?? 'the full report is in the workflow run';
  const compose = (stacks: string[], diffText: string[], shortened: string[]) =>
    [...header, ...(notes.length > 0 ? [...notes, ''] : []), ...flagSection, ...stacks, ...diffText, ...shortened].join(
      '\n',
    );
  const attempts = [
    () => compose(renderStacks(true), cdkDiff, []),
    () => compose(renderStacks(true), [], [`_\`cdk diff\`'s output left out to fit a comment; ${hint}._`, '']),
    () => compose(renderStacks(false), [], [`_Changed paths left out to fit a comment; ${hint}._`, '']),
  ];
  for (const attempt of attempts) {
    const text = attempt();
    if (text.length <= limit) return text;
  }
  const text = compose(renderStacks(false), [], []);
  return `${text.slice(0, limit - 200)}\n\n… cut to fit a comment; ${hint}.\n`;
}

/** cdk diff's text without terminal colours, cut to a readable length, safe inside a code fence. */
function cdkDiffText(text: string): string {
  // eslint-disable-next-line no-control-regex
  const plain = text.replace(/\u001b\[[0-9;]*m/g, '').replace(/```/g, "'''");
  return plain.length > 20_000 ? `${plain.slice(0, 20_000)}\n… (${plain.length} characters)` : plain;
}

// ---------------------------------------------------------------------------------------------
// Command line

/** The usage line every argument error ends with. */
export const DIFF_USAGE =
  'usage: npm run pr:diff -- --base <dir> --head <dir> [--out <file>] [--full <file>] [--base-label <text>] [--head-label <text>] [--cdk-diff <file>]';

/** The parsed command line. */
export interface DiffArgs {
  readonly base: string;
  readonly head: string;
  readonly out?: string;
  /** Where to write the report uncut (for the run's job summary). */
  readonly full?: string;
  readonly baseLabel?: string;
  readonly headLabel?: string;
  readonly cdkDiff?: string;
}

/** Parses the arguments; throws an error naming the bad argument and what is expected. */
export function parseDiffArgs(argv: readonly string[]): DiffArgs {
  const values: Record<string, string> = {};
  const known = ['--base', '--head', '--out', '--full', '--base-label', '--head-label', '--cdk-diff'];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!known.includes(arg)) throw new Error(`unknown argument ${JSON.stringify(arg)}\n${DIFF_USAGE}`);
    const value = argv[++i];
    if (value === undefined || value.startsWith('--')) throw new Error(`${arg} needs a value\n${DIFF_USAGE}`);
    values[arg] = value;
  }
  for (const required of ['--base', '--head']) {
    if (values[required] === undefined) throw new Error(`${required} is required\n${DIFF_USAGE}`);
  }
  return {
    base: values['--base'],
    head: values['--head'],
    out: values['--out'],
    full: values['--full'],
    baseLabel: values['--base-label'],
    headLabel: values['--head-label'],
    cdkDiff: values['--cdk-diff'],
  };
}

function main(): void {
  let args: DiffArgs;
  let comment: string;
  let full: string | undefined;
  try {
    args = parseDiffArgs(process.argv.slice(2));
    const base = readSide(args.base);
    const head = readSide(args.head);
    const cdkDiff =
      args.cdkDiff !== undefined && existsSync(args.cdkDiff) ? readFileSync(args.cdkDiff, 'utf8') : undefined;
    const options: RenderOptions = { baseLabel: args.baseLabel, headLabel: args.headLabel, cdkDiff };
    comment = renderComment(base, head, {
      ...options,
      fullReportHint: args.full === undefined ? undefined : "the whole report is in the run's job summary",
    });
    if (args.full !== undefined) full = renderComment(base, head, { ...options, limit: Number.MAX_SAFE_INTEGER });
  } catch (error) {
    console.error(`pr:diff: ${(error as Error).message}`);
    process.exit(2);
  }
  if (args.full !== undefined && full !== undefined) writeFileSync(args.full, full);
  if (args.out === undefined) process.stdout.write(comment);
  else {
    writeFileSync(args.out, comment);
    console.log(`pr:diff: wrote ${basename(args.out)} (${comment.length} characters)`);
  }
}

if (require.main === module) main();
