// `npm run pr:deployed -- --assembly <dir> --out <dir>`: for each stack of a cloud assembly, the
// template CloudFormation holds for it now (cloudformation:GetTemplate, the template as it was
// submitted), written to <out>/<stack>.template.json, for `npm run pr:diff -- --base <out>`. A stack not
// deployed yet is listed in <out>/deployed-stacks.json as such, and the diff shows it as added. The
// pull-request workflow runs this under the read-only diff role (README.md, "Pull requests").
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CloudFormationClient, GetTemplateCommand } from '@aws-sdk/client-cloudformation';
import { DEPLOYED_LIST } from './pr-diff';

/** A stack of a cloud assembly, with the region it deploys to (undefined: the caller's default). */
export interface AssemblyStack {
  readonly name: string;
  readonly region?: string;
}

/** The stacks of a cloud assembly, in the manifest's order, with their regions. */
export function assemblyStacks(dir: string): AssemblyStack[] {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as {
    artifacts?: Record<string, { type: string; environment?: string; properties?: { stackName?: string } }>;
  };
  return Object.entries(manifest.artifacts ?? {})
    .filter(([, artifact]) => artifact.type === 'aws:cloudformation:stack')
    .map(([id, artifact]) => {
      // aws://<account>/<region>; an environment-agnostic stack deploys to the caller's region.
      const region = artifact.environment?.split('/')[3];
      return {
        name: artifact.properties?.stackName ?? id,
        region: region === undefined || region === 'unknown-region' ? undefined : region,
      };
    });
}

/** What was found: the stacks deployed, and those not deployed yet. */
export interface DeployedList {
  readonly deployed: string[];
  readonly notDeployed: string[];
}

/**
 * Fetches each stack's deployed template into `out`. A stack CloudFormation does not know is listed
 * as not deployed; any other error (no permission, no network) stops with the stack, the region and
 * the action named.
 */
export async function fetchDeployed(
  stacks: readonly AssemblyStack[],
  out: string,
  defaultRegion: string,
  clientFor: (region: string) => CloudFormationClient = (region) => new CloudFormationClient({ region }),
): Promise<DeployedList> {
  mkdirSync(out, { recursive: true });
  const clients = new Map<string, CloudFormationClient>();
  const list: DeployedList = { deployed: [], notDeployed: [] };
  for (const stack of stacks) {
    const region = stack.region ?? defaultRegion;
    if (!clients.has(region)) clients.set(region, clientFor(region));
    let body: string | undefined;
    try {
      const answer = await clients
        .get(region)!
        .send(new GetTemplateCommand({ StackName: stack.name, TemplateStage: 'Original' }));
      body = answer.TemplateBody;
    } catch (error) {
      const { name, message } = error as Error;
      if (name === 'ValidationError' && /does not exist/.test(message)) {
        list.notDeployed.push(stack.name);
        continue;
      }
      throw new Error(
        `cloudformation:GetTemplate of ${stack.name} in ${region} failed: ${name}: ${message}. The diff role needs cloudformation:GetTemplate on the deployment's stacks (README.md, "Pull requests")`,
        { cause: error },
      );
    }
    let template: unknown;
    try {
      template = JSON.parse(body ?? '');
    } catch {
      throw new Error(`${stack.name} in ${region}: the deployed template is not JSON; expected one deployed by cdk`);
    }
    writeFileSync(join(out, `${stack.name}.template.json`), `${JSON.stringify(template, null, 1)}\n`);
    list.deployed.push(stack.name);
  }
  writeFileSync(join(out, DEPLOYED_LIST), `${JSON.stringify(list, null, 2)}\n`);
  return list;
}

const USAGE = 'usage: npm run pr:deployed -- --assembly <cloud assembly dir> --out <dir>';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const value = (flag: string) => {
    const at = args.indexOf(flag);
    return at >= 0 && args[at + 1] !== undefined && !args[at + 1].startsWith('--') ? args[at + 1] : undefined;
  };
  const assembly = value('--assembly');
  const out = value('--out');
  const region = process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  if (assembly === undefined || out === undefined) {
    console.error(`pr:deployed: --assembly and --out are required\n${USAGE}`);
    process.exit(2);
  }
  if (region === undefined) {
    console.error('pr:deployed: no region: set AWS_REGION (the region of the stacks without one of their own)');
    process.exit(2);
  }
  try {
    const list = await fetchDeployed(assemblyStacks(resolve(assembly)), resolve(out), region);
    console.log(
      `deployed: ${list.deployed.join(', ') || 'none'}; not deployed yet: ${list.notDeployed.join(', ') || 'none'}`,
    );
  } catch (error) {
    console.error(`pr:deployed: ${(error as Error).message}`);
    process.exit(1);
  }
}

if (require.main === module) void main();
